"""Helpers the tests and the benchmarks share: one copy each, imported as ``tests.support.x``.

=================  ===========================================================================
``mosquitto``      a real Mosquitto per test (the gym's settings as shipped, password files,
                   a CA), and its pytest fixtures (registered by tests/conftest.py)
``witness``        a QoS 1 subscriber with a persistent session: what the wall would have seen
``relay``          a TCP relay between stations and the broker that can refuse or blackhole
``net``            free loopback ports
``signals``        motions with a known truth for the simulated chips; random orientations
``scale``          the real weighing chain on a simulated load cell
``disk``           a small tmpfs, filled to the last byte
``fuzz``           the fuzzing oracles (tests/test_fuzz.py and bench/bench_fuzz.py drive them)
``display``        the wall display's tests: fake stations, the service, Chromium (a plugin)
``display_crowd``  hundreds of open event streams; a pids cgroup like systemd's TasksMax
``process``        a process's CPU time and memory, from /proc
``stations``       simulated stations on a real broker, cycled from one thread
``postgres``       a real PostgreSQL server
``homeassistant``  a real Home Assistant core
=================  ===========================================================================
"""
