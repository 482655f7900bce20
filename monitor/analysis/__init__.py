"""Signal analysis: tremor metrics from windows of acceleration.

This layer knows numpy arrays and physical units only -- nothing of I2C, MQTT or
the station's clock. Drivers hand it ``(N, 3)`` arrays in m/s^2; what it returns
are frozen dataclasses that the alert rules and the MQTT payloads read::

    from monitor.analysis.tremor import analyze
    m = analyze(block, fs=1000.0)     # one 2.5 s window, gravity still in it
    m.rms_mg, m.peak_hz, m.moving
"""
