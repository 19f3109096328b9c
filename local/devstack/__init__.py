"""Development tools: the local stack (moto SQS + Airtable emulator), fakes and sample data.

Not deployed: it lives outside `src/`.
"""

from .context import LambdaContext
from .factories import DONATION_FIELD_MAP, DONATION_FIELD_MAP_JSON, Budget, donation

__all__ = [
    "DONATION_FIELD_MAP",
    "DONATION_FIELD_MAP_JSON",
    "Budget",
    "LambdaContext",
    "LocalStack",
    "donation",
]


def __getattr__(name: str) -> object:
    # The stack imports boto3 and the emulator; load it only when asked for.
    if name == "LocalStack":
        from .stack import LocalStack

        return LocalStack
    raise AttributeError(name)
