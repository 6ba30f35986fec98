"""The PyBullet tabletop: a Franka Panda arm, cubes and a bin.

The scene (physics, camera), perception from images, kinematics, motion
planning, skills, IK actuation, the robot tools and tasks, the Gymnasium env,
the in-process :class:`~sim_envs.tabletop.robot.LocalRobot`, and what the robot
demo's sim, perception and actuation processes run (:mod:`sim_envs.tabletop.nodes`,
converting at their edges with :mod:`sim_envs.tabletop.wire`).
"""
