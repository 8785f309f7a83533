"""Reliability and security suite: faults under load, bad input, isolation, secrets, soak."""
