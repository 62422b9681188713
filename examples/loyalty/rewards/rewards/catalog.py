"""What points buy. The catalogue is part of the product, so it lives in the code and changes
through a release, like any other rule of the program."""

from __future__ import annotations

from pydantic import BaseModel


class Reward(BaseModel):
    id: str
    name: str
    cost: int
    description: str


CATALOG: tuple[Reward, ...] = (
    Reward(
        id="sticker", name="Sprint sticker", cost=2, description="A laptop sticker for the sprint."
    ),
    Reward(id="tea", name="Tea", cost=3, description="A cup of tea from the conference café."),
    Reward(id="coffee", name="Coffee", cost=5, description="A coffee from the conference café."),
    Reward(
        id="t-shirt",
        name="Sprint T-shirt",
        cost=25,
        description="The sprint's T-shirt, while sizes last.",
    ),
)

_BY_ID = {reward.id: reward for reward in CATALOG}


def find(reward_id: str) -> Reward | None:
    return _BY_ID.get(reward_id)
