"""What a resume does with unfinished and failed trials: Ray Tune's ``resume=`` values and
``Tuner.restore``'s flags, read into one pair (unfinished: resume/skip; failed: keep/resume/restart)."""

from __future__ import annotations

from typing import Any

_SUFFIXES = {"": ("resume", "keep"), "+ERRORED": ("resume", "resume"), "+RESTART_ERRORED": ("resume", "restart"),
             "+ERRORED_ONLY": ("skip", "resume"), "+RESTART_ERRORED_ONLY": ("skip", "restart")}


def resume_policy(resume: Any) -> tuple[str, str] | None:
    """``tune.run``'s ``resume`` as (what to do with unfinished trials, with failed ones), or None
    for a new experiment. Takes Ray Tune's values: True/False, ``"AUTO"`` and its suffixes
    ``+ERRORED``, ``+RESTART_ERRORED``, ``+ERRORED_ONLY``, ``+RESTART_ERRORED_ONLY``; or the
    pair itself: (``"resume"``/``"skip"``, ``"keep"``/``"resume"``/``"restart"``)."""
    if resume is False or resume is None:
        return None
    if resume is True:
        return _SUFFIXES[""]
    if isinstance(resume, str) and resume.upper().startswith("AUTO") and resume.upper()[4:] in _SUFFIXES:
        return _SUFFIXES[resume.upper()[4:]]
    if (isinstance(resume, tuple) and len(resume) == 2 and resume[0] in ("resume", "skip")
            and resume[1] in ("keep", "resume", "restart")):
        return resume
    raise ValueError(f"The value of `resume` is {resume!r}, but must be True, False, 'AUTO' or 'AUTO' with one of "
                     f"{', '.join(repr(k) for k in _SUFFIXES if k)} (e.g. 'AUTO+ERRORED').")


def resume_pair(resume_unfinished: bool = True, resume_errored: bool = False,
                restart_errored: bool = False) -> tuple[str, str]:
    """Ray Tune's ``Tuner.restore`` flags as a ``resume`` value of ``tune.run``."""
    if resume_errored and restart_errored:
        raise ValueError("`resume_errored` and `restart_errored` are both True; pass one: resume failed trials from "
                         "their latest checkpoints, or restart them from scratch.")
    return ("resume" if resume_unfinished else "skip",
            "resume" if resume_errored else "restart" if restart_errored else "keep")
