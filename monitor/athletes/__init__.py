"""Athletes, not stations: check-in at a station, the athlete's profile, a record of each session.

* :mod:`.identity`: a tag's UID hashed with the gym's secret into a pseudonymous athlete id;
* :mod:`.desk`: who is checked in (tag, button, ``cmd/session``), their profile applied to the
  analysis, and when their session ends;
* :mod:`.record`: the session record built when it ends (``<prefix>/<station>/session_record``).

The station (:class:`~monitor.station.Station`) owns a :class:`~.desk.CheckInDesk`; the uplink
publishes what it decides and fetches profiles for it. PRIVACY.md (repository root) says what
is kept about athletes, where, and for how long.
"""

from .desk import CheckedIn, CheckInDesk, CheckInRefused
from .identity import GymSecret, load_secret, make_secret
from .record import SessionRecorder

__all__ = [
    "CheckInDesk",
    "CheckInRefused",
    "CheckedIn",
    "GymSecret",
    "SessionRecorder",
    "load_secret",
    "make_secret",
]
