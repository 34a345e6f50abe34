def main() -> None:
    raise SystemExit("steward: no commands yet")
