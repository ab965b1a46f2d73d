"""Checks the Teams simulator's activity tokens with Microsoft's official
Bot Framework Python SDK (botframework-connector from PyPI): the SDK's
JwtTokenValidation, pointed at the simulator's OpenID metadata, must
accept the activities the simulator signs and refuse the forged ones
(expired, wrong audience, wrong issuer, bad signature, serviceurl
mismatch, key not endorsed for msteams, unknown key).

Usage: teams-sdk.py <OpenID metadata URL> <app id> <cases.json>
cases.json: [{"name", "activity", "authorization", "valid"}]
Exit status 0 when every case came out as expected.
"""

import asyncio
import json
import sys

from botbuilder.schema import Activity
from botframework.connector.auth import (
    ChannelValidation,
    JwtTokenValidation,
    SimpleCredentialProvider,
)

metadata_url, app_id, cases_file = sys.argv[1:4]
ChannelValidation.open_id_metadata_endpoint = metadata_url
credentials = SimpleCredentialProvider(app_id, "")


async def accepted(case):
    activity = Activity().deserialize(case["activity"])
    try:
        identity = await JwtTokenValidation.authenticate_request(
            activity, case["authorization"] or "", credentials
        )
    except Exception as error:  # the SDK raises PermissionError and others
        return False, f"{type(error).__name__}: {error}"
    return identity.is_authenticated, "authenticated"


async def main():
    with open(cases_file, encoding="utf-8") as handle:
        cases = json.load(handle)
    failures = 0
    for case in cases:
        ok, detail = await accepted(case)
        verdict = "as expected" if ok == case["valid"] else "UNEXPECTED"
        failures += ok != case["valid"]
        print(f"{case['name']}: accepted={ok} ({detail}) {verdict}")
    print(f"{len(cases) - failures}/{len(cases)} cases as expected")
    return 1 if failures else 0


sys.exit(asyncio.run(main()))
