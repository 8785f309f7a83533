.PHONY: test reliability soak

test:
	bash scripts/test.sh

# The reliability and security suite in its CI form (a few minutes).
reliability:
	.venv/bin/python -m pytest tests/reliability -q

# The full 10-minute soak through the gateway with 2 executors.
soak:
	bash scripts/soak.sh
