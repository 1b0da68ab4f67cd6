"""Assertions shared by the command-line tests."""


def one_line_error(result, *fragments):
    """A CLI result that failed (exit code != 0) with exactly one `Error:` line holding every fragment, no traceback."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.output.strip().splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
