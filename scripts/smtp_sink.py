"""An SMTP server that accepts every message and stores it as DIR/<n>-<recipient>.eml."""
import asyncio
import itertools
import os
import sys

from aiosmtpd.controller import Controller

host, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
counter = itertools.count(len(os.listdir(directory)))


class Store:
    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            name = f"{next(counter):08d}-{rcpt.replace('/', '_')}.eml"
            tmp = os.path.join(directory, "." + name)
            with open(tmp, "wb") as f:
                f.write(envelope.original_content or envelope.content)
            os.rename(tmp, os.path.join(directory, name))
        return "250 OK"


controller = Controller(Store(), hostname=host, port=port)
controller.start()
print(f"smtp sink on {host}:{port}, storing in {directory}", flush=True)
asyncio.get_event_loop().run_forever()
