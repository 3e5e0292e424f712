"""``newsletter dkim``: make a DKIM key and print the DNS record that publishes it."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.common import console
from newsletter.exceptions import InvalidInput

app = typer.Typer(help="DKIM keys: make one and print its DNS record.", no_args_is_help=True)

TXT_CHUNK = 255  # the longest string in one TXT record; longer values are several strings


class KeyAlgorithm(StrEnum):
    rsa = "rsa"
    ed25519 = "ed25519"


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` readable by its owner only; never overwrite a key that is there."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInput(
            f"{path} exists; choose another --out (a key is never overwritten)"
        ) from None
    except OSError as exc:
        raise InvalidInput(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def zone_line(name: str, value: str) -> str:
    """A zone file line for the record, the value cut into quoted strings of 255 at most."""
    chunks = [value[i : i + TXT_CHUNK] for i in range(0, len(value), TXT_CHUNK)]
    return f"{name}. IN TXT ( " + " ".join(f'"{c}"' for c in chunks) + " )"


@app.command("keygen")
def keygen(
    selector: Annotated[str, typer.Option(help="the selector: the key's name in DNS")],
    domain: Annotated[str, typer.Option(help="the signing domain (the From address's)")],
    algorithm: Annotated[
        KeyAlgorithm, typer.Option(help="rsa (every receiver) or ed25519 (RFC 8463)")
    ] = KeyAlgorithm.rsa,
    bits: Annotated[int, typer.Option(help="RSA key size; 2048 is what receivers expect")] = 2048,
    out: Annotated[
        Path | None, typer.Option(help="where to write the private key; default dkim-SELECTOR.pem")
    ] = None,
) -> None:
    """Make a DKIM private key (mode 0600) and print the TXT record to publish for it."""
    from newsletter.mail.dkim import DKIMSigner, check_dns_name, generate_key

    selector = check_dns_name("selector", selector)
    domain = check_dns_name("domain", domain)
    path = out or Path(f"dkim-{selector}.pem")
    pem = generate_key(bits, algorithm.value)
    signer = DKIMSigner(selector, domain, pem)  # signs and verifies once: the key works
    _write_new(path, pem)
    what = f"{signer.key_bits}-bit RSA" if algorithm is KeyAlgorithm.rsa else "ed25519"
    console.print(f"wrote the {what} private key to {path} (mode 0600)", highlight=False)
    console.print("publish this TXT record in DNS:", highlight=False)
    # plain lines, never wrapped: the value is copied from here into the DNS provider's form
    typer.echo(f"name: {signer.dns_name}")
    typer.echo(f"value: {signer.txt_record}")
    typer.echo(f"zone file: {zone_line(signer.dns_name, signer.txt_record)}")
    key_file = path.resolve()
    if algorithm is KeyAlgorithm.rsa:
        settings = (
            f"NEWSLETTER_DKIM_SELECTOR={selector} NEWSLETTER_DKIM_DOMAIN={domain} "
            f"NEWSLETTER_DKIM_KEY_FILE={key_file}"
        )
    else:
        settings = (
            f"beside an RSA key: NEWSLETTER_DKIM_ED25519_SELECTOR={selector} "
            f"NEWSLETTER_DKIM_ED25519_KEY_FILE={key_file} (or alone, as NEWSLETTER_DKIM_*)"
        )
    console.print(f"then sign with it: {settings}", highlight=False, soft_wrap=True)
