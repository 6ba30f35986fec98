"""Tools (specs, effects, registry), the parallel DAG executor and the agent."""
