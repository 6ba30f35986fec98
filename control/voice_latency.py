"""A voice turn's latencies, in ms from the end of speech, as `rtagent voice` and
`rtagent bench voice` report them."""

from __future__ import annotations

from typing import Any

__all__ = ["READ_ONLY", "breakdown"]

READ_ONLY = ("get_weather", "get_time", "web_search", "get_light_state", "list_timers",
             "get_shopping_list", "get_calendar")


def _ms(t_ns: int | None, ref_ns: int | None) -> float | None:
    if not t_ns or not ref_ns:
        return None
    return round((t_ns - ref_ns) / 1e6, 1)


def breakdown(turn: dict[str, Any]) -> dict[str, Any]:
    """Per-turn latencies in ms from the end of speech (the last speech sample)."""
    eos = turn.get("end_of_speech_ns")
    out = {"endpoint_ms": _ms(turn.get("endpoint_ns"), eos),
           "final_ms": _ms(turn.get("final_ns"), eos),
           "first_call_ms": _ms(turn.get("first_call_ns"), eos),
           "first_action_ms": _ms(turn.get("first_result_ns"), eos),
           "results_ms": _ms(turn.get("done_ns"), eos),
           "first_audio_ms": _ms(turn.get("first_audio_ns"), eos)}
    ep = out["endpoint_ms"]
    for name in ("first_action", "first_audio"):  # from the VAD's end-of-utterance decision
        v = out[f"{name}_ms"]
        out[f"endpoint_to_{name}_ms"] = None if v is None or ep is None else round(v - ep, 1)
    results = (turn.get("turn") or {}).get("results", [])
    lookups = [r for r in results if r.get("name") in READ_ONLY and r.get("ok")]
    out["lookups"] = len(lookups)
    out["lookups_done_at_eos"] = sum(bool(r.get("speculative")) and 0 < r.get("ended_ns", 0) <= (eos or 0)
                                     for r in lookups)
    ep = turn.get("endpoint_ns") or 0
    out["lookups_done_at_endpoint"] = sum(bool(r.get("speculative")) and 0 < r.get("ended_ns", 0) <= ep
                                          for r in lookups)
    return out
