"""What a new password must be, after NIST SP 800-63B (5.1.1.2): long enough, not the username,
not a common or easily guessed one. No composition rules (no "a digit and a capital"): they
make passwords harder to remember and barely harder to guess.

"Common or easily guessed" is zxcvbn's estimate: its list of 30,000 common passwords, English
words and names, keyboard patterns, repeats and sequences, and the account's own username and
name. A password it guesses in under a million tries is refused, with its reason.

Applied wherever a password is set: an admin creating an account or setting a new password
(`server.actions.admin`). The demo accounts are seeded with `TELEROUNDS_DEMO_PASSWORD` ("demo" by
default, for `make run` and the tests) without this check: they exist for trying the service.
"""

from __future__ import annotations

import unicodedata

from zxcvbn import zxcvbn

from server.contract.errors import AppError

MIN_LENGTH = 10
MAX_LENGTH = 200
# Refused below this many estimated guesses: zxcvbn's score 0 and 1 ("too guessable", "very guessable").
MIN_GUESSES = 1e6
# zxcvbn's own cap (its time grows with the length); a password is judged by its first 72 characters.
_ESTIMATED_LENGTH = 72
_SERVICE_WORDS = ("telerounds", "teleround", "benhvien", "hospital")


def _plain(text: str) -> str:
    """Vietnamese without its diacritics, as people type it in passwords ("Bình" → "Binh")."""
    decomposed = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def problem(password: str, username: str, name: str = "") -> str | None:
    """Why this password may not be set for this account, or None when it may. Pure; a few ms."""
    if len(password) < MIN_LENGTH:
        return f"the password must be at least {MIN_LENGTH} characters long"
    if len(password) > MAX_LENGTH:
        return f"the password must be at most {MAX_LENGTH} characters long"
    if password.strip().casefold() == username.strip().casefold():
        return "the password must not be the username"
    hints = [username, *username.replace(".", " ").replace("_", " ").replace("-", " ").split()]
    # "BS. Trần Văn Bình" also as "tran van binh": its words, and its last ones run together.
    for text in (name, _plain(name)):
        words = text.split()
        hints += [*words, *("".join(words[start:]) for start in range(len(words)))]
    estimate = zxcvbn(password[:_ESTIMATED_LENGTH], user_inputs=[*hints, *_SERVICE_WORDS])
    if float(estimate["guesses"]) < MIN_GUESSES:
        reason = str(estimate["feedback"].get("warning") or "").rstrip(".")
        because = f" ({reason[0].lower()}{reason[1:]})" if reason else ""
        return (
            f"the password is too common or too easy to guess{because}; "
            "choose a longer one, for example a few unrelated words"
        )
    return None


def check(password: str, username: str, name: str = "") -> None:
    """`invalid`, saying why, unless the password may be set."""
    reason = problem(password, username, name)
    if reason is not None:
        raise AppError("invalid", f"password: {reason}")
