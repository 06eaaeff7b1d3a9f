"""FastAPI hello, most users' first endpoint: the handler returns a dict, which FastAPI serialises to JSON
through its default response class, the framework's ordinary path, routing and all."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def hello():  # no return annotation: it would add response-model validation
    return {"message": "Hello, world!"}
