"""Tools (specs, effects, registry), the parallel DAG executor, the agent, and the voice
demo's decision (:mod:`control.voice_decision`, decoding partials ahead in
:mod:`control.voice_preflight`)."""
