"""Value phrases: the words for an argument's value, and the value the call must carry.

``say_value(slot, arg, rng, heldout)`` -> ``(words, value)``: numbers in digits
or words (``-0.35`` as ``-0.35``, ``minus 0.35`` or ``minus zero point three
five``), metres or centimetres, minutes and hours, degrees, percent, objects by
colour, and strings from pools split into a training part and a held-out part.
"""

from __future__ import annotations

import random

from models.callformat import ArgKind, ArgSpec

__all__ = ["POOLS", "generic_value", "number_words", "say_value"]

_CUBE = ["cube", "block", "cube", "box"]
POOLS: dict[str, tuple[list[str], list[str]]] = {  # name -> (train pool, held-out pool)
    "city": (["Oslo", "Paris", "Berlin", "Tokyo", "London", "Madrid", "Rome", "New York",
              "Sydney", "Toronto", "Cairo", "Mumbai", "Vienna", "Seoul", "Chicago", "Dublin",
              "Prague", "Helsinki", "Nairobi", "Lima", "Boston", "Zurich", "Athens", "Bangkok",
              "San Francisco", "Buenos Aires", "Cape Town", "Hong Kong", "Reykjavik", "Munich"],
             ["Stockholm", "Amsterdam", "Warsaw", "Denver", "Jakarta", "Santiago", "Copenhagen",
              "Montreal", "Istanbul", "Melbourne", "Los Angeles", "Kyoto"]),
    "query": (["best pasta recipes", "how tall is the Eiffel tower", "opening hours of the library",
               "the latest football scores", "cheap flights to Rome", "how to fix a leaking tap",
               "who won the world cup", "symptoms of the flu", "electric cars", "python tutorials",
               "the history of jazz", "good books for kids", "train times to Oxford",
               "how to bake sourdough bread", "the population of Canada", "vegan lasagne",
               "how far is the moon", "the best hiking trails", "used bikes for sale",
               "how to tie a tie"],
              ["the tallest mountain in Africa", "banana bread recipe", "how to learn piano",
               "museums open on Sunday", "the speed of light", "cheap hotels in Lisbon"]),
    "item": (["milk", "eggs", "bread", "butter", "apples", "bananas", "coffee", "rice", "pasta",
              "olive oil", "toilet paper", "tomatoes", "cheese", "yogurt", "chicken",
              "orange juice", "dish soap", "onions", "garlic", "flour", "sugar", "cereal",
              "carrots", "peanut butter", "ice cream", "batteries", "tea bags", "salt"],
             ["oat milk", "avocados", "lemons", "spinach", "honey", "dog food", "shampoo", "paprika"]),
    "contact": (["Anna", "Ben", "Mum", "Dad", "Sarah", "Tom", "Maria", "Alex", "Grandma", "Lisa",
                 "David", "Emma", "John", "Priya", "Kenji", "Olga", "Carlos", "Fatima"],
                ["Sophie", "Lucas", "Aunt Jane", "Mohammed", "Nina", "Peter"]),
    "text": (["I'm running late", "dinner is ready", "call me back when you can",
              "I'll be home at six", "see you at the station", "don't forget the keys",
              "happy birthday", "the meeting moved to 3 pm", "can you pick up the kids",
              "I'm on my way", "thanks for today", "let's meet tomorrow", "I love you",
              "the package arrived", "we're out of milk"],
             ["I'll be there in ten minutes", "good luck with the exam", "the door is unlocked",
              "see you at the cinema"]),
    "label": (["pasta", "eggs", "laundry", "tea", "pizza", "oven", "bread", "rice", "workout",
               "nap", "meeting", "cookies", "soup", "potatoes", "coffee"],
              ["cake", "parking", "homework", "steak", "yoga"]),
    "word": (["alpha", "blue", "report", "garden", "project x", "main", "weekly", "test run",
              "hello world", "north", "backup", "draft"],
             ["omega", "summary", "evening", "kitchen door"]),
}

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(value: float) -> str:
    """English words for ``value``: ``-0.35`` -> ``"minus zero point three five"``."""
    if value < 0:
        return "minus " + number_words(-value)
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    whole, _, frac = text.partition(".")
    n = int(whole)

    def below_1000(k: int) -> str:
        if k < 20:
            return _ONES[k]
        if k < 100:
            return _TENS[k // 10] + ("" if k % 10 == 0 else " " + _ONES[k % 10])
        rest = k % 100
        return _ONES[k // 100] + " hundred" + ("" if rest == 0 else " and " + below_1000(rest))

    words = below_1000(n) if n < 1000 else str(n)
    if frac:
        words += " point " + " ".join(_ONES[int(d)] for d in frac)
    return words


def _num(value: float, rng: random.Random, words_p: float = 0.25) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    if rng.random() < words_p:
        return number_words(value)
    if value < 0 and rng.random() < 0.4:
        return rng.choice(["minus ", "negative "]) + text[1:]
    return text


def _metres(value: float, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        return _num(value, rng)
    if r < 0.7:
        return _num(value, rng) + rng.choice([" m", " metres", " meters", " m"])
    cm = round(value * 100)
    unit = rng.choice([" cm", " centimetres", " centimeters", " cm"])
    return _num(cm, rng, 0.3) + unit


def _minutes(rng: random.Random) -> tuple[str, float]:
    choices: list[tuple[str, float]] = [
        ("an hour", 60), ("half an hour", 30), ("an hour and a half", 90), ("a minute", 1),
        ("a quarter of an hour", 15), ("two hours", 120), ("90 seconds", 1.5),
        ("30 seconds", 0.5), ("45 seconds", 0.75), ("three hours", 180),
    ]
    if rng.random() < 0.25:
        return rng.choice(choices)
    m = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 40, 45, 50, 90, 2.5, 1.5])
    unit = rng.choice([" minutes", " minutes", " min", " mins"]) if m != 1 else " minute"
    return _num(m, rng, 0.35) + unit, m


def _degrees(rng: random.Random) -> tuple[str, float]:
    c = rng.choice([16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 18.5, 19.5, 20.5, 21.5, 22.5, 7, 12, 28])
    if c % 1 and rng.random() < 0.3:
        text = number_words(int(c)) + " and a half"
    else:
        text = _num(c, rng, 0.3)
    return text + rng.choice([" degrees", " degrees", "°C", " degrees Celsius", " C", ""]), c


def _percent(rng: random.Random) -> tuple[str, int]:
    p = rng.choice([10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 100, 5, 15, 35, 45, 65])
    text = number_words(p) if rng.random() < 0.3 else str(p)
    return text + rng.choice([" percent", "%", " percent", " per cent"]), p


def _object(value: str, rng: random.Random) -> str:
    if value == "bin":
        return rng.choice(["the bin", "the trash bin", "the bin", "the waste bin"])
    colour, _, noun = value.partition("_")
    noun = rng.choice(_CUBE) if noun == "cube" else noun.replace("_", " ")
    return rng.choice([f"the {colour} {noun}", f"{colour} {noun}", f"the {colour} one",
                       f"the {colour} {noun}", f"that {colour} {noun}"])


def _target(value: str, rng: random.Random) -> str:
    if value == "bin":
        return rng.choice(["in the bin", "into the bin", "in the trash bin", "into the waste bin"])
    return rng.choice(["on", "on top of", "onto"]) + " " + _object(value, rng)


def say_value(slot: str, arg: ArgSpec, rng: random.Random, heldout: bool,
              choices: list | None = None) -> tuple[str, object]:
    """Words for one slot and the value the call must carry."""
    pool_name = {"city": "city", "query": "query", "item": "item", "contact": "contact",
                 "text": "text", "label": "label"}.get(arg.name)
    if arg.kind is ArgKind.ENUM:
        value = rng.choice(choices or list(arg.enum))
        if slot in ("object",):
            return _object(str(value), rng), value
        if slot == "target":
            return _target(str(value), rng), value
        return str(value).replace("_", " "), value
    if arg.name in ("x", "y", "z") and arg.kind is ArgKind.NUMBER:
        lo, hi = arg.minimum or 0.0, arg.maximum if arg.maximum is not None else 1.0
        steps = round((hi - lo) / 0.05)
        value = round(lo + 0.05 * rng.randint(0, steps), 2)
        return _metres(value, rng), value
    if arg.name == "minutes":
        return _minutes(rng)
    if arg.name == "celsius":
        return _degrees(rng)
    if arg.name == "brightness":
        return _percent(rng)
    if pool_name and arg.kind is ArgKind.STRING:
        value = rng.choice(POOLS[pool_name][1 if heldout else 0])
        return value, value
    return generic_value(arg, rng, heldout)


def generic_value(arg: ArgSpec, rng: random.Random, heldout: bool) -> tuple[str, object]:
    """Words and value for an argument of a tool without hand-written templates."""
    if arg.kind is ArgKind.ENUM:
        v = rng.choice(list(arg.enum))
        return (str(v).replace("_", " "), v)
    if arg.kind is ArgKind.BOOLEAN:
        v = rng.random() < 0.5
        return (rng.choice(["on", "true", "yes", "enabled"]) if v
                else rng.choice(["off", "false", "no", "disabled"])), v
    if arg.kind in (ArgKind.NUMBER, ArgKind.INTEGER):
        lo = arg.minimum if arg.minimum is not None else (-100.0 if rng.random() < 0.2 else 0.0)
        hi = arg.maximum if arg.maximum is not None else lo + 100.0
        if arg.kind is ArgKind.INTEGER:
            iv = rng.randint(int(lo), int(hi))
            return _num(iv, rng), iv
        step = rng.choice([1.0, 0.5, 0.1, 0.05]) if hi - lo > 2 else rng.choice([0.1, 0.05])
        fv = round(lo + step * rng.randint(0, int((hi - lo) / step)), 2)
        if fv.is_integer():
            fv = int(fv)
        return _num(fv, rng), fv
    pool = POOLS["word"][1 if heldout else 0]
    value = rng.choice(pool)
    if arg.max_length is not None:
        value = value[:arg.max_length].strip() or "x"
    return value, value
