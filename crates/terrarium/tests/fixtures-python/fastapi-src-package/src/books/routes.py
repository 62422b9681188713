"""Books, imported through the `src` package."""

from fastapi import APIRouter

router = APIRouter()


@router.get("/")
def books():
    return [{"title": "Dune"}]
