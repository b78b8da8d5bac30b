// Just enough of onnx.TensorProto to read the ONNX-test inputs (`input_0.pb`) that the latency
// bench feeds to both runtimes: name, dims, and data of float32 / int32 / int64 tensors, from
// `raw_data` or the typed repeated fields.

const TYPES = {
  1: ['float32', Float32Array, 4],
  6: ['int32', Int32Array, 4],
  7: ['int64', BigInt64Array, 8],
};

function reader(bytes) {
  let pos = 0;
  const varint = () => {
    let value = 0n;
    let shift = 0n;
    for (;;) {
      const b = bytes[pos++];
      value |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return value;
      shift += 7n;
    }
  };
  return {
    done: () => pos >= bytes.length,
    varint,
    field() {
      const key = Number(varint());
      return [key >> 3, key & 7];
    },
    bytes() {
      const n = Number(varint());
      const out = bytes.subarray(pos, pos + n);
      pos += n;
      return out;
    },
    skip(wire) {
      if (wire === 0) varint();
      else if (wire === 1) pos += 8;
      else if (wire === 2) this.bytes();
      else if (wire === 5) pos += 4;
      else throw new Error(`wire type ${wire}`);
    },
  };
}

/** `{name, dtype, dims, data}` of a serialized TensorProto. */
export function parseTensor(buffer) {
  const bytes = new Uint8Array(buffer);
  const r = reader(bytes);
  const dims = [];
  let name = '';
  let type = 0;
  let raw = null;
  const values = [];
  while (!r.done()) {
    const [field, wire] = r.field();
    if (field === 1 && wire === 2) {
      const p = reader(r.bytes());
      while (!p.done()) dims.push(Number(p.varint()));
    } else if (field === 1) dims.push(Number(r.varint()));
    else if (field === 2) type = Number(r.varint());
    else if (field === 8) name = new TextDecoder().decode(r.bytes());
    else if (field === 9) raw = r.bytes().slice();
    else if (field === 4 && wire === 2) {
      const b = r.bytes();
      values.push(...new Float32Array(b.slice().buffer));
    } else if ((field === 5 || field === 7) && wire === 2) {
      const p = reader(r.bytes());
      while (!p.done()) values.push(BigInt.asIntN(64, p.varint()));
    } else r.skip(wire);
  }
  const spec = TYPES[type];
  if (!spec) throw new Error(`tensor ${name}: data_type ${type} is not read by the bench`);
  const [dtype, Typed, size] = spec;
  let data;
  if (raw) data = new Typed(raw.buffer, 0, raw.byteLength / size);
  else if (dtype === 'int32') data = Int32Array.from(values, Number);
  else data = Typed.from(values);
  return { name, dtype, dims, data };
}
