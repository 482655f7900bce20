"""Gym tremor monitor: I2C sensing, on-device tremor analysis, alerts over MQTT.

The package is laid out the way data flows through a station:

* :mod:`monitor.i2c` -- register maps and chip drivers (know registers, nothing of tremor)
* :mod:`monitor.sim` -- register-level simulated chips and athlete scenarios
* :mod:`monitor.analysis` -- tremor metrics and activity (know arrays, nothing of I2C)
* :mod:`monitor.clock` -- the one clock that acquisition and analysis share
"""

__version__ = "0.1.0"
