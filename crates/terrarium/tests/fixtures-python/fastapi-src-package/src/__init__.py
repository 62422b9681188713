"""The application: `src` is the top-level package."""

from fastapi import FastAPI

from src.books.routes import router

app = FastAPI()
app.include_router(router, prefix="/api/books")


@app.get("/health")
def health():
    return {"status": "ok", "package": __name__}
