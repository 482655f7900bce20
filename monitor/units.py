"""The units the station computes in, each defined once.

Accelerations are m/s^2 everywhere inside the station; sensors, thresholds and payloads that
speak in g or mg convert with :data:`G`::

    from monitor.units import G

    rms_mg = rms_m_s2 / G * 1000.0
"""

#: Standard gravity, m/s^2 per g: the conventional value (CGPM 1901) that accelerometer
#: datasheets mean by "g".
G = 9.80665
