"""Portal: the reporters' side of Qinglian (its API for now): follow a complaint with its
follow-up code, and add information to it."""
