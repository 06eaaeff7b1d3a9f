"""FastAPI hello: what most users' first endpoint looks like.

The handler returns a dict, so FastAPI serialises it to JSON
(`{"message":"Hello, world!"}`, application/json) through its default
response class: the framework's ordinary path, routing and all.
"""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def hello():  # no return annotation: it would add response-model validation
    return {"message": "Hello, world!"}
