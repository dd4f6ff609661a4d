"""A challenge task's solution, checked once for every plugin: what the CA's challenge must carry.

Role: the step between a :class:`~letsencrypt.plugin_api.ChallengeTask` and the challenge math of
``letsencrypt.acme.challenges`` that every authenticator repeats: a challenge the CA sent without
the fields it needs is reported as :class:`~letsencrypt.plugin_api.ChallengeSetupError`, naming the
domain, rather than as a ``ValueError`` deep in the math.

Allowed imports: the standard library, ``letsencrypt.plugin_api`` and ``letsencrypt.acme``.
"""

from __future__ import annotations

from letsencrypt.acme import challenges
from letsencrypt.plugin_api import ChallengeSetupError, ChallengeTask

__all__ = ["dvsni_solution"]


def dvsni_solution(task: ChallengeTask) -> challenges.DvsniSolution:
    """The legacy ``dvsni`` solution of ``task``: the SNI name to answer and the certificate to present there.

    Raises :class:`ChallengeSetupError` when the challenge lacks ``r`` or ``nonce`` or they are malformed.
    """
    r, nonce = task.challenge.r, task.challenge.nonce
    if r is None or nonce is None:
        raise ChallengeSetupError(f"the CA's dvsni challenge for {task.domain} lacks r or nonce")
    try:
        return challenges.dvsni_solution(r, nonce, task.domain, task.account_key)
    except ValueError as err:
        raise ChallengeSetupError(f"cannot answer the CA's dvsni challenge for {task.domain}: {err}") from err
