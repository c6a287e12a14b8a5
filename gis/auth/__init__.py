"""Who may sign in and how: users and roles, passwords (argon2), API keys, JWTs for web
sessions, and brute-force protection. Framework-free: the API (api/security.py) and the CLI
(gis/cli/auth.py) are thin layers over these functions.

What a principal may *read* is decided elsewhere, in one place: layers/access.py.
"""

from gis.auth.errors import AuthError, CredentialsRejected, TooManyFailures, UserError
from gis.auth.principal import AuthPrincipal
from gis.auth.roles import ROLES

__all__ = ["ROLES", "AuthError", "AuthPrincipal", "CredentialsRejected", "TooManyFailures",
           "UserError"]
