"""A Modbus TCP device served by pymodbus (a second, independent implementation), its holding
registers laid out by pymodbus's own converter: reads JSON points from stdin —
[{"address": 0, "type": "FLOAT32", "order": "CDAB", "value": 1.5}, ...] — prints the port it
listens on (loopback), then serves unit 1 until killed."""
import asyncio
import json
import socket
import sys

from pymodbus.client import ModbusTcpClient as Client
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import StartAsyncTcpServer

try:
    from pymodbus.datastore import ModbusDeviceContext as Context
    DEVICES = "devices"
except ImportError:  # pymodbus before 3.10
    from pymodbus.datastore import ModbusSlaveContext as Context
    DEVICES = "slaves"

registers = [0] * 1000
for point in json.load(sys.stdin):
    data_type = getattr(Client.DATATYPE, point["type"])
    order = point["order"]
    # pymodbus lays the words out (big: ABCD, little: CDAB); a byte swap makes BADC and DCBA.
    value = point["value"]
    if "INT" in point["type"]:
        value = int(value)
    words = Client.convert_to_registers(
        value, data_type, word_order="little" if order in ("CDAB", "DCBA") else "big"
    )
    if order in ("BADC", "DCBA"):
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    registers[point["address"]:point["address"] + len(words)] = words

with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
# The block starts at 1: pymodbus reads protocol address N from its element N.
device = Context(hr=ModbusSequentialDataBlock(1, registers))
context = ModbusServerContext(**{DEVICES: {1: device}}, single=False)
print(port, flush=True)
asyncio.run(StartAsyncTcpServer(context=context, address=("127.0.0.1", port)))
