"""The baseline for intake's benchmark: a bare FastAPI endpoint that only parses the body."""

import os

import uvicorn
from fastapi import FastAPI, status

from schemas.complaint import ComplaintSubmission

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/complaints", status_code=status.HTTP_202_ACCEPTED)
async def parse_only(submission: ComplaintSubmission) -> dict[str, str]:
    return {"source_ref": submission.source_ref}


if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(os.environ["QINGLIAN_HTTP_PORT"]), log_level="warning"
    )
