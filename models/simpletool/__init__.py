"""SimpleTool-style decoding on llama.cpp: structure forced, values decoded in parallel.

The answer is in the compact call format (:mod:`models.callformat`). Nothing
of its structure is sampled:

- **Jump-forward**: forced spans (``(``, argument names, ``, ``, the rest of an
  enum member once it is unique) are appended in the same batch as the next
  decision, never one token at a time.
- **Function name**: only the allowed tokens of a trie over the tokenized names
  are scored, never a grammar over the whole vocabulary: where several names
  share the chosen first token (``get_weather``, ``get_time``, ...), the shared
  tokens are forced and the branching token decides, one pass per branch point.
  ``name_scoring="whole"`` instead ranks every name by its whole log-probability
  (one batch, one forked sequence per name).
- **Arguments** under per-type constraints (:mod:`models.constraints`). Two
  schedules: ``"sequential"`` (one sequence, every value conditioned on the
  ones before) and ``"parallel"`` (one sequence per required argument, all
  forked from the shared prefix ``name(`` and advanced together in one
  ``llama_batch`` per step). ``"auto"`` times one decode step of 1 vs 3
  sequences on this model and device at start-up and picks parallel only with
  GPU offload and where three sequences cost clearly less than three steps. On
  the CPU it stays sequential: a parallel head sees ``move_to(y=`` without the
  ``x`` before it, and the small models (base or our adapter, trained on the
  sequential text) then copy the first number (measured: ``y 0.0`` -> ``y=0.5``).
- **Prompt lookup** (``lookup=True``): values are often copied from the request
  (``x 0.4`` -> ``x=0.4``); a draft taken from the request is verified in the
  same batch and kept only as far as it is the constrained argmax, so the
  output is exactly greedy decoding's, in fewer forward passes. Once the name
  is chosen, the whole rest of the call is drafted so where the request gives
  its values (``move_to(`` + ``x=0.27, y=-0.33, z=0.2)``: one pass, not four);
  the call of the one tool the request names (every word after the verb:
  ``set_timer`` in "set a timer for 12 minutes") is drafted in the prompt's own
  batch, name and all (one pass in all); where names collide, the one the request
  names is drafted with its call from the branching token on; a value
  that is over (``=true``, a string the request ends with) is drafted with what
  follows it (``)``), so the decision after it reads the same batch. A draft
  agreed with costs a few batch tokens (~5 ms each here), a pass saved ~25 ms.
  "Exactly" is up to llama.cpp's arithmetic: a token evaluated in a batch gets
  logits a little different from the same token evaluated alone (top-two logit
  gaps moved by up to ~0.35 here), so a decision that is a near tie can go the
  other way (seen: ``set_light(..., on=true)`` vs ``..., brightness=30)``).
- **Leads**: the token every value of an argument starts with (``=`` before
  ``true`` / ``false``, an enum member or an unsigned number, ``="`` before a
  string) is structure and forced; a signed number's ``=`` / ``=-`` is decided.
- **Compound values** (arrays, objects, maps, unions, ``null``): brackets, commas, keys
  and quotes are forced; the model decides values and, for arrays and maps, whether
  another element comes (bounded by ``maxItems`` or a default cap); a value's close and
  what follows are one decision (``"])`` vs ``",``).
- **Values from the request**: a number is one of the request's numbers where any fits
  (free where none does), a string a span of its words; each occurrence gives one value
  per call, and an optional number is offered only while one is left for it (as an
  argument whose run-time enum is empty is not offered).
- Several calls per answer, as many as the model asks for (up to ``max_calls``, 8 by
  default), yielded one by one by ``decode_stream`` as soon as each call's ``)`` is
  decided; whether another call follows (the end of turn or a new line) is decided
  after the yield, so the caller can start the call one pass earlier. A call that
  repeats the one right before it ends the answer (a small model's loop, never a
  second action).
- **References** (:mod:`~models.simpletool.refs`): where an earlier call's tool declares
  its result (``x-returns``), a later argument of a fitting type may also be
  ``$1.field`` (``celsius=$1.celsius``): one more constrained option of the value.
- The system prompt, tool list and examples are evaluated once; a call
  evaluates only the tokens after the cached prefix.
- **Answer drafts** (``DecodeContext.draft``, e.g. the calls decoded for a
  partial transcript): the draft's tokens go into the prompt's own batch with
  logits at each; every decision then reads them while the answer agrees with
  the draft and drops the rest at the first token it does not (the same
  greedy answer; a draft the decoder produced itself is replayed token for token).

Where each part lives: :mod:`~models.simpletool.decoder` (the decoder object, one
decode's run), :mod:`~models.simpletool.cursor` (one decode's state and its invariant),
:mod:`~models.simpletool.calls` (a call: name, arguments),
:mod:`~models.simpletool.values` (a value: scalars, arrays, objects, maps, unions),
:mod:`~models.simpletool.said` (the numbers and words the request offers its values),
:mod:`~models.simpletool.names` (choosing among alternatives),
:mod:`~models.simpletool.parallel` (parallel argument heads),
:mod:`~models.simpletool.refs` (``$k`` references as values) and
:mod:`~models.simpletool.drafts` (the prompt-lookup heuristics, pure functions).
"""

from models.simpletool.decoder import Schedule, SimpleToolDecoder

__all__ = ["Schedule", "SimpleToolDecoder"]
