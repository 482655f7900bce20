"""The test suite; the helpers it shares with the benchmarks are in :mod:`tests.support`."""

import pytest

# Asserts in the helpers (the fuzzing oracles, say) explain themselves like a test's own.
pytest.register_assert_rewrite("tests.support")
