"""Test harness: real components (servers, S3) started on 127.0.0.1 for the test suite."""
