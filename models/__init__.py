"""Model artifacts, the Decoder protocol and the llama.cpp decoders."""
