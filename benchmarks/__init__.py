"""Benchmarks: one script per performance goal, each printing one JSON object last."""
