"""PyBullet environments (Gymnasium API), perception, IK actuation and robot tools."""
