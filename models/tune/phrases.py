"""Phrasings: request templates per tool and the ways to say a value.

A template is ``"text with {slots}|arg=value,arg=value"``: each ``{slot}`` names
an argument, filled by a *value phrase* (which returns the words and the value
the call must carry), and the part after ``|`` fixes arguments the words imply
(``turn off ... |on=false``). Each template is a family of its own
(:mod:`models.tune.families`): about a fifth of each tool's templates are kept for
held-out evaluation only, and so are a fifth of the open values
(:mod:`models.tune.openvalues`). Requests that want several calls, and those that
take a request back, are built from these in :mod:`models.tune.compounds`.

The robot and voice tools (``sim_envs/robot_tools.json``,
``audio/voice_tools.json``) get hand-written templates; any other tool gets
templates built from its name, description and schema (:func:`generic_templates`).
"""

from __future__ import annotations

from models.callformat import ArgSpec

__all__ = ["NO_TOOL", "TEMPLATES", "generic_templates"]

TEMPLATES: dict[str, list[str]] = {
    # ------------------------------------------------------------------ robot
    "detect_objects": [
        "what do you see?", "what objects are on the table?", "list the objects",
        "detect the objects", "what is on the table?", "scan the table",
        "which cubes can you see?", "look at the table and tell me what's there",
        "identify everything on the table", "what's in front of you?",
    ],
    "locate_object": [
        "where is {object}?", "find {object}", "locate {object}",
        "what is the position of {object}?", "where's {object}",
        "give me the coordinates of {object}", "tell me where {object} is",
        "how far away is {object}?", "get the location of {object}", "where exactly is {object}?",
    ],
    "plan_grasp": [
        "plan how to grasp {object}", "plan a grasp for {object}",
        "work out how to grab {object} without moving", "figure out a grasp for {object}",
        "how would you pick up {object}? just plan it", "plan picking up {object}",
        "compute the approach for grabbing {object}", "prepare a grasp plan for {object}",
        "plan, don't move: grasp {object}", "check how you would grab {object}",
    ],
    "plan_path": [
        "plan a path to x {x}, y {y}, z {z}", "plan a route for the gripper to ({x}, {y}, {z})",
        "check if you can reach x {x}, y {y}, z {z} without moving",
        "compute a path to x={x} y={y} z={z}", "plan the motion to z {z}, y {y}, x {x}",
        "find a collision-free path to {x}, {y}, {z}",
        "plan, but don't move, to x {x} y {y} z {z}",
        "how would you get to x {x}, y {y}, z {z}? only plan it",
        "plan a path to y {y}, x {x}, z {z}", "path plan to x {x} y {y} z {z}",
    ],
    "move_to": [
        "move to x {x}, y {y}, z {z}", "move the gripper to x={x} y={y} z={z}",
        "go to {x}, {y}, {z}", "move the arm to position x {x} y {y} z {z}",
        "put the gripper at x {x}, y {y} and z {z}", "move to z {z}, x {x}, y {y}",
        "go to y {y} x {x} z {z}", "position the gripper at x {x}, y {y}, height {z}",
        "move to the point ({x}, {y}, {z})", "send the gripper to x {x} y {y} z {z}",
        "move x {x} y {y} z {z}", "take the arm to coordinates {x}, {y}, {z}",
        "I want the gripper at x {x}, y {y}, z {z}", "shift the gripper to x={x}, y={y}, z={z}",
        "reach x {x}, y {y}, z {z}", "move the gripper to {x} {y} {z}",
        "bring the arm to x {x} y {y} height {z}", "go to ({x}, {y}, {z})",
        "gripper to {x}, {y}, {z}", "move to coordinates x {x} y {y} z {z}",
    ],
    "grasp": [
        "pick up {object}", "grab {object}", "grasp {object}", "take {object}",
        "lift {object}", "get {object}", "pick {object} up", "hold {object}",
        "fetch {object}", "pick up {object} with the gripper", "grab hold of {object}",
        "snatch {object}", "go and pick up {object}", "collect {object}", "seize {object}",
    ],
    "place_on": [
        "put {object} {target}", "place {object} {target}", "drop {object} {target}",
        "pick up {object} and put it {target}", "stack {object} {target}",
        "move {object} {target}", "grab {object}, then drop it {target}",
        "set {object} down {target}", "take {object} and place it {target}",
        "throw {object} {target}", "lift {object} and set it down {target}",
        "get {object} {target}", "carry {object} {target}", "deposit {object} {target}",
        "I want {object} {target}",
    ],
    "point_at": [
        "point at {object}", "point to {object}", "hover over {object}",
        "aim the gripper at {object}", "show me {object} by pointing", "indicate {object}",
        "point the gripper at {object}", "hover above {object}", "gesture at {object}",
        "move over {object} and point",
    ],
    "release": [
        "let go", "release", "open the gripper", "drop it", "release the object",
        "open your hand", "let it go", "release what you are holding",
        "open the claw", "unclench the gripper",
    ],
    "go_home": [
        "go home", "return to the home position", "go back to the home pose",
        "move the arm home", "reset the arm", "return home", "park the arm",
        "back to the start position", "go to your rest pose", "home the arm",
    ],
    # ------------------------------------------------------------------ voice
    "get_weather": [
        "what's the weather in {city}", "weather in {city}", "is it going to rain in {city} today?",
        "how hot is it in {city}?", "what's the forecast for {city}", "tell me the weather for {city}",
        "do I need an umbrella in {city}?", "how's the weather in {city} today", "{city} weather",
        "is it sunny in {city}?", "what's it like outside in {city}?",
        "will it snow in {city} today?", "what's the weather going to be in {city} tomorrow?",
        "how cold will it get in {city} on Saturday?", "any rain expected in {city}?",
        "should I pack a coat for {city}?", "temperature in {city}",
    ],
    "get_time": [
        "what time is it in {city}?", "time in {city}", "tell me the local time in {city}",
        "what's the current time in {city}", "what time is it over in {city} right now",
        "{city} time please", "do you know the time in {city}?", "check the clock in {city}",
        "what's the hour in {city}?", "how late is it in {city}?",
    ],
    "web_search": [
        "search the web for {query}", "look up {query}", "google {query}",
        "find information about {query}", "search for {query}", "search online for {query}",
        "do a web search on {query}", "look up {query} online", "find me {query} on the internet",
        "browse the web for {query}",
    ],
    "get_light_state": [
        "are the {room} lights on?", "is the light on in the {room}?",
        "check the lights in the {room}", "how bright are the {room} lights?",
        "what's the state of the {room} lights", "did I leave the {room} light on?",
        "tell me if the lights in the {room} are on", "is the {room} lit?",
        "are the lights in the {room} still on?", "status of the {room} lights",
    ],
    "list_timers": [
        "what timers are running?", "list my timers", "how much time is left on my timers?",
        "show the timers", "any timers going?", "check my timers",
        "how long until my timer goes off?", "which timers are set?", "read out my timers",
        "timers?",
    ],
    "get_shopping_list": [
        "what's on my shopping list?", "read me the shopping list", "show the shopping list",
        "what do I need to buy?", "check my shopping list", "what's on the grocery list?",
        "list the items on my shopping list", "tell me my shopping list", "shopping list please",
        "what do we still need from the shop?",
    ],
    "get_calendar": [
        "what's on my calendar today?", "do I have any meetings today?", "read my calendar",
        "what's my schedule today?", "any events today?", "check my agenda",
        "what appointments do I have today?", "am I busy today?", "today's calendar please",
        "what's planned for today?", "what's on my calendar tomorrow?", "am I free on Friday?",
    ],
    "set_light": [
        "turn on the {room} lights|on=true", "turn the {room} lights off|on=false",
        "switch off the light in the {room}|on=false", "switch on the {room} light|on=true",
        "lights on in the {room}|on=true", "{room} lights off|on=false",
        "turn off the lights in the {room}|on=false",
        "turn on the light in the {room} at {brightness}|on=true",
        "set the {room} lights to {brightness}|on=true", "dim the {room} lights to {brightness}|on=true",
        "put the lights in the {room} on at {brightness}|on=true", "kill the lights in the {room}|on=false",
        "brighten the {room} to {brightness}|on=true", "light up the {room}|on=true",
        "shut the {room} lights off|on=false", "switch the {room} lights on at {brightness}|on=true",
        "turn the lights on in the {room}|on=true", "{room} lights to {brightness}|on=true",
        "switch the {room} light off|on=false", "make the {room} lights {brightness}|on=true",
    ],
    "set_thermostat": [
        "set the {room} to {celsius}", "set the thermostat in the {room} to {celsius}",
        "make the {room} {celsius}", "heat the {room} to {celsius}",
        "change the {room} temperature to {celsius}", "I want the {room} at {celsius}",
        "{room} thermostat {celsius}", "cool the {room} down to {celsius}",
        "warm up the {room} to {celsius}", "put the {room} heating on {celsius}",
    ],
    "set_timer": [
        "set a timer for {minutes}", "timer {minutes}", "start a timer for {minutes}",
        "set a {label} timer for {minutes}", "start a timer for {minutes} called {label}",
        "count down {minutes}", "set a timer for {minutes} for the {label}",
        "put a timer on for {minutes}", "time {minutes} for me", "{label} timer, {minutes}",
        "wake me in {minutes}", "remind me in {minutes} about the {label}",
        "start a countdown of {minutes}", "set a {minutes} timer",
        "timer for the {label}: {minutes}",
    ],
    "add_to_shopping_list": [
        "add {item} to the shopping list", "put {item} on my shopping list", "we need {item}",
        "add {item} to my list", "remember to buy {item}", "shopping list: add {item}",
        "I'm out of {item}, add it to the list", "don't let me forget {item} on the grocery list",
        "add {item}", "put {item} on the list",
    ],
    "send_message": [
        "text {contact} that {text}", "send a message to {contact}: {text}", "tell {contact} {text}",
        "message {contact} saying {text}", "send {contact} a text: {text}",
        "let {contact} know that {text}", "write to {contact}: {text}", "text {contact} {text}",
        "send a text to {contact} saying {text}", "drop {contact} a message: {text}",
        "could you message {contact}: {text}", "shoot {contact} a text saying {text}",
    ],
    "call_contact": [
        "call {contact}", "ring {contact}", "phone {contact}", "give {contact} a call",
        "can you call {contact} for me", "dial {contact}", "get {contact} on the phone",
        "I need to speak to {contact}, call them", "start a call with {contact}",
        "make a phone call to {contact}",
    ],
}

NO_TOOL: list[str] = [
    "thank you", "thanks, that's all", "hello there", "good morning", "what's your name?",
    "tell me a joke", "never mind", "you're doing great", "how are you?", "ok",
    "nothing, forget it", "who made you?", "cancel that", "hmm, let me think",
    "sorry, wrong button", "that was fun", "goodbye", "what's the meaning of life?",
    "sing me a song", "good job", "wait a moment", "what's your favourite colour?",
    "can you dance?", "I'm bored", "are you a robot?", "how old are you?",
    "do you like music?", "nice work", "hold on", "that's all for now",
    "see you later", "you're welcome", "I'm just testing", "not now", "what can you do?",
    "nothing", "great, thank you", "do you have feelings?", "I changed my mind",
    "tell me about yourself", "who are you?", "what's three times four?", "you are funny",
    "bye for now", "what's ten minus three?", "are you listening?", "let me think about it",
    "no thanks", "that's enough", "what's your favourite food?", "stop", "thanks", "no",
    "nope", "cancel", "forget it", "never mind, thanks", "that's fine", "all good", "ok cool",
    "nothing for now", "just kidding", "ignore that", "sorry, wrong person", "hang on",
    "I'm done", "nah", "stop it", "thanks a lot", "cheers", "not right now", "leave it",
    "don't do anything", "ok, that's it", "perfect, thanks", "no, that's all",
]


def generic_templates(name: str, args: list[ArgSpec], description: str) -> list[str]:
    """Templates for a tool from its name, description and arguments."""
    words = name.replace("_", " ").replace(".", " ")
    desc = description.strip().rstrip(".").lower()
    slots = [f"{a.name.replace('_', ' ')} {{{a.name}}}" for a in args if a.required]
    tail = ", ".join(slots)
    rev = ", ".join(reversed(slots))
    out = [
        f"{words} {tail}", f"please {words} with {tail}", f"can you {words}? {tail}",
        f"I need you to {words}, {rev}", f"{words} using {tail}", f"call {name} with {tail}",
        f"go ahead and {words}: {tail}", f"{words} now, {rev}",
    ]
    if desc:
        out += [f"{desc}, {tail}", f"{desc} with {rev}"]
    return [t.rstrip(" ,:?").replace(" ,", ",") if not slots else t for t in out]
