"""Session ownership: the one package that decides where a session lives and in which state.

- :mod:`.states` -- the lifecycle states and the transition table;
- :mod:`.owner` -- :class:`SessionOwner`: every session of this worker,
  admission, attach/detach, cold tier, eviction and expiry; the only code
  that changes a session's state;
- :mod:`.handover` -- :class:`Handover`: resume from another worker or the
  store, answering peers' adoptions, depositing everything on stop;
- :mod:`.checkpoint` -- :class:`Checkpoints`: copies in the session store;
- :mod:`.sealer` -- :class:`Sealer`: session <-> sealed blob.

Collaborators come in through constructors (settings, sealer, store, bus,
clock); nothing here knows Tornado.
"""

from .checkpoint import Checkpoints
from .handover import Handover
from .owner import Refused, SessionOwner
from .sealer import Sealer
from .states import IllegalTransition, State

__all__ = ["Checkpoints", "Handover", "IllegalTransition", "Refused", "Sealer", "SessionOwner", "State"]
