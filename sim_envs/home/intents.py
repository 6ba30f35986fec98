"""What a short utterance that asks for nothing means: yes, no, thanks, stop, hello, ...

:func:`social_intents` reads an utterance made only of such words (fillers like
"please" or "oh" aside) and returns the kinds it holds; an utterance with any
other words is a request (an empty set), for the decoder. :func:`is_yes` reads
the answer to a yes/no question, where a leading "yes" or "sure" is enough
("yes, call her"). A small general lexicon of English, not a list of requests.
"""

from __future__ import annotations

import re
from enum import StrEnum

__all__ = ["Intent", "is_no", "is_yes", "social_intents"]


class Intent(StrEnum):
    AFFIRM = "affirm"
    DENY = "deny"
    CANCEL = "cancel"
    STOP = "stop"
    GRATITUDE = "gratitude"
    PRAISE = "praise"
    GREETING = "greeting"
    FAREWELL = "farewell"


_PHRASES: dict[Intent, tuple[str, ...]] = {
    Intent.AFFIRM: ("yes", "yeah", "yea", "yep", "yup", "sure", "ok", "okay", "alright", "all right",
                    "correct", "right", "exactly", "absolutely", "definitely", "of course",
                    "go ahead", "do it", "do that", "please do", "confirm", "confirmed",
                    "affirmative", "that's right", "that is right", "sounds good", "go for it",
                    "sure thing", "i do", "indeed", "yes please", "by all means"),
    Intent.DENY: ("no", "nope", "nah", "not", "don't", "do not", "negative", "no way", "wrong",
                  "not now", "don't do it", "do not do that", "don't do that", "not really"),
    Intent.CANCEL: ("cancel", "cancel that", "cancel it", "never mind", "nevermind",
                    "forget it", "forget about it", "forget that", "scratch that", "abort",
                    "leave it", "skip it", "don't bother", "i changed my mind",
                    "changed my mind"),
    Intent.STOP: ("stop", "stop it", "stop talking", "quiet", "be quiet", "shut up", "silence",
                  "enough", "that's enough", "pause", "hush", "shh", "hold on", "wait"),
    Intent.GRATITUDE: ("thanks", "thank you", "thank you very much", "thanks a lot",
                       "many thanks", "cheers", "much appreciated", "appreciate it",
                       "i appreciate it", "thx", "ta"),
    Intent.PRAISE: ("great", "perfect", "awesome", "nice", "good job", "well done", "cool",
                    "excellent", "brilliant", "that's great", "good", "very good", "lovely"),
    Intent.GREETING: ("hi", "hello", "hey", "hey there", "hi there", "hello there",
                      "good morning", "good afternoon", "good evening", "hiya", "howdy", "yo"),
    Intent.FAREWELL: ("bye", "goodbye", "good bye", "bye bye", "good night", "see you",
                      "see you later", "that's all", "that is all", "that's it", "talk later",
                      "later"),
}
_FILLERS = ("please", "oh", "um", "uh", "er", "erm", "hmm", "well", "so", "just", "now", "then",
            "very", "much", "again", "actually", "really")
_WORD = re.compile(r"[a-z']+")
_MAX_WORDS = 8  # a longer utterance is a request, whatever it starts with
_MAX_AFTER_YES = 3  # "yes, call her": a few words after a leading yes still answer it
_NEGATIVE = frozenset({"no", "not", "don't", "nope", "nah", "never", "cancel", "stop", "wrong",
                       "abort", "forget"})  # ... unless they take it back ("yes and no")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


_BY_LENGTH = sorted(((tuple(p.split()), kind) for kind, ps in _PHRASES.items() for p in ps),
                    key=lambda pk: -len(pk[0]))


def social_intents(text: str) -> frozenset[Intent]:
    """The kinds in an utterance made only of social words, longest phrases first; empty
    when any other word is in it (then it is a request)."""
    words = _words(text)
    if not words or len(words) > _MAX_WORDS:
        return frozenset()
    found: set[Intent] = set()
    i = 0
    while i < len(words):
        for phrase, kind in _BY_LENGTH:
            if tuple(words[i:i + len(phrase)]) == phrase:
                found.add(kind)
                i += len(phrase)
                break
        else:
            if words[i] not in _FILLERS:
                return frozenset()
            i += 1
    return frozenset(found)


def is_yes(text: str) -> bool:
    """The answer to a yes/no question is yes ("yes", "sure, go ahead", "yes, call her")."""
    kinds = social_intents(text)
    if kinds:
        return Intent.AFFIRM in kinds and not kinds & {Intent.DENY, Intent.CANCEL, Intent.STOP}
    words = tuple(_words(text))
    lead = max((len(p) for p, k in _BY_LENGTH if k is Intent.AFFIRM and words[:len(p)] == p),
               default=0)
    return lead > 0 and len(words) - lead <= _MAX_AFTER_YES and not set(words[lead:]) & _NEGATIVE


def is_no(text: str) -> bool:
    """The answer to a yes/no question is no ("no", "cancel", "never mind", "no thanks")."""
    kinds = social_intents(text)
    return bool(kinds & {Intent.DENY, Intent.CANCEL, Intent.STOP}) and Intent.AFFIRM not in kinds
