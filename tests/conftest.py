"""Shared test settings.  torch is imported here on purpose: parity tests must never skip
silently because torch is missing; a missing torch is a collection error."""

import os

import hypothesis
import torch  # noqa: F401  (fail loudly if the test extra is not installed)

torch.set_num_threads(1)  # same work in every pytest-xdist worker; parity, not speed

FULL = os.environ.get("JAXPOOL_FULL") == "1"

hypothesis.settings.register_profile(
    "default", max_examples=10, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
hypothesis.settings.register_profile(
    "full", max_examples=int(os.environ.get("JAXPOOL_HYPOTHESIS_EXAMPLES", 500)), deadline=None,
    derandomize=True, print_blob=True, suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
hypothesis.settings.load_profile("full" if FULL else "default")
