"""rewards: the loyalty program's reward shop.

Lists what points buy and redeems rewards by debiting the points service over HTTP. It keeps
no state of its own: the ledger is the single source of truth, and the idempotency key sent
with each debit makes a redemption safe to retry. The ASGI application is ``rewards.main:app``.
"""
