"""The home the voice assistant acts in.

:mod:`~sim_envs.home.store` (the SQLite home: lights, thermostats, timers, the
shopping list, contacts, messages, the calendar), :mod:`~sim_envs.home.services`
(weather, world clock and web search standing in for remote APIs),
:mod:`~sim_envs.home.tools` (the voice tool contract bound to both),
:mod:`~sim_envs.home.replies` (short spoken replies from what the tools did) and
:mod:`~sim_envs.home.nodes` (the voice demo's actuation process: device actions
over RPC, replies spoken).
"""
