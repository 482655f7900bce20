"""Who a tag is, on the network: a pseudonymous athlete id from its UID and the gym's secret.

A tag's UID is a fixed number printed into the chip: anyone who reads it once
(a phone, another reader) could follow that person from topic to topic if it
were sent as it is. So a station never sends it. It sends
``"a" + base32(HMAC-SHA256(gym_secret, uid))``, lower case, without padding,
cut to 20 characters in all (95 bits of the HMAC): the same tag gives the same
id at every station of the gym (they share the secret file), and nobody
without the secret can go back from an id to a tag, or forward from a tag to
an id::

    secret = GymSecret.load("/etc/gym-monitor/gym-secret")
    secret.athlete_id(bytes.fromhex("04a2243a5e5b80"))    # 'a' + 19 base32 characters

The secret is a file of at least :data:`MIN_SECRET_BYTES` bytes (``[athletes]
secret_file``); :func:`make_secret` writes a new one (mode 600). Losing or
changing it gives every tag a new id: the history of the old ids stays under
them, unlinked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..files import read_small_file

#: An id is this many characters: "a" and 19 of base32 (95 bits).
ID_LENGTH = 20
#: A shorter secret could be guessed from ids and the UIDs of a few known tags.
MIN_SECRET_BYTES = 16
MAX_SECRET_BYTES = 4096
KEY = "athletes.secret_file"


@dataclass(frozen=True)
class GymSecret:
    """The gym's shared secret (``repr`` never shows it)."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) < MIN_SECRET_BYTES:
            raise ValueError(f"a gym secret needs at least {MIN_SECRET_BYTES} bytes")

    @classmethod
    def load(cls, path: str | os.PathLike[str], key: str = KEY) -> GymSecret:
        """The secret in the file ``path`` (one trailing newline ignored); ConfigError naming
        ``key`` if it cannot be used."""
        data = read_small_file(path, key, limit=MAX_SECRET_BYTES)
        data = data[:-1] if data.endswith(b"\n") else data
        if len(data) < MIN_SECRET_BYTES:
            raise ConfigError(
                key,
                f"{path}: holds {len(data)} bytes; a gym secret needs at least "
                f"{MIN_SECRET_BYTES} (make one with: head -c 32 /dev/urandom | "
                "base64 > FILE; chmod 600 FILE)",
            )
        return cls(data)

    def athlete_id(self, uid: bytes) -> str:
        """The athlete id of the tag with UID ``uid`` (see the module docstring)."""
        digest = hmac.new(self.key, bytes(uid), hashlib.sha256).digest()
        return ("a" + base64.b32encode(digest).decode("ascii").rstrip("=").lower())[:ID_LENGTH]


def make_secret(path: str | os.PathLike[str]) -> GymSecret:
    """Write a new random secret to ``path`` (mode 600, parent made) unless a file is there;
    return the secret the file holds. For simulated stations and the demo."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return GymSecret.load(p)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    return GymSecret.load(p)


#: A simulated station without ``secret_file`` keeps a secret of its own here, in its state_dir.
SIMULATED_SECRET_FILE = "gym-secret"


def load_secret(config, *, simulate: bool, create: bool = True) -> GymSecret | None:
    """The secret ``config`` names (``[athletes] secret_file``), as a station needs it.

    A station with an NFC reader must have one: without the file it stops with
    one ConfigError line. A simulated station (and the demo) without one keeps
    its own in its state directory, made here if ``create``. None when the
    station needs none: no reader and no file named (ids then come only from
    ``cmd/session``, already hashed).
    """
    path = config.athletes.secret_file
    if path:
        return GymSecret.load(path)
    if config.nfc is None:
        return None
    if simulate:
        if not create:
            return None
        target = Path(config.station.state_dir) / SIMULATED_SECRET_FILE
        try:
            return make_secret(target)
        except OSError as err:
            raise ConfigError(
                "station.state_dir",
                f"cannot keep the simulated gym secret in {target}: {err.strerror or err}",
            ) from None
    raise ConfigError(
        KEY,
        "is required with an [nfc] reader: the file with the gym's secret "
        "that turns a tag into an athlete id, the same on every station (make "
        "one with: head -c 32 /dev/urandom | base64 > /etc/gym-monitor/"
        "gym-secret; chmod 600)",
    )
