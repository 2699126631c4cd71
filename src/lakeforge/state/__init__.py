"""Run state kept in the lakehouse itself: run history and the run lock."""
