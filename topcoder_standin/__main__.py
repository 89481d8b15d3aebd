"""`python -m topcoder_standin --port 8080`: run the stand-in by hand (Submission API v5, review-api-v6
summations and the Auth0 proxy on one port)."""

from __future__ import annotations

import argparse
import threading

from topcoder_standin.server import TopcoderStandIn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Topcoder Submission API v5 + review-api-v6 summations + Auth0 proxy stand-in (loopback)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--spec", default=None, help="path to submissions-api-v5-swagger.yaml")
    parser.add_argument("--v6-spec", default=None, help="path to review-api-v6-summations.yaml")
    parser.add_argument(
        "--submission",
        action="append",
        default=[],
        metavar="ID:CHALLENGE:MEMBER",
        help="register a submission, v5 UUID or v6 nanoid (repeatable)",
    )
    parser.add_argument(
        "--accept-any-submission",
        action="store_true",
        help="accept reviews and summations for unregistered submissions",
    )
    args = parser.parse_args(argv)
    standin = TopcoderStandIn(
        args.spec,
        host=args.host,
        port=args.port,
        auto_register_submissions=args.accept_any_submission,
        v6_spec_path=args.v6_spec,
    )
    for spec in args.submission:
        submission_id, challenge_id, member_id = spec.split(":", 2)
        standin.add_submission(submission_id, challenge_id, member_id)
    with standin:
        print(
            f"Submission API: {standin.base_url}\nReview API v6:  {standin.v6_base_url}\n"
            f"Auth0 proxy:    {standin.token_url}",
            flush=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping")
            for recorded in standin.violations():
                print(f"violation: {recorded.method} {recorded.path}: {recorded.errors + recorded.response_errors}")


if __name__ == "__main__":
    main()
