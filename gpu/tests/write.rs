//! Streaming bytes into a tensor ([`TensorWriter`]): chunks of any size, unaligned tails carried
//! over, whole words only. Its own binary: the overflow and short-stream cases leave no device
//! error, but the size refusal must not share a device with kernel tests that read back.

mod common;

use common::{gpu, read, values};
use wick_gpu::{GpuError, GpuTensor, TensorWriter};

/// Writes `data`'s bytes in chunks whose sizes cycle through `sizes`, then reads them back.
fn stream(data: &[f32], sizes: &[usize]) -> Vec<f32> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensor = GpuTensor::empty(gpu(), &[data.len()]).expect("empty");
    let mut writer = TensorWriter::new(tensor);
    let (mut pos, mut i) = (0, 0);
    while pos < bytes.len() {
        let n = sizes[i % sizes.len()].min(bytes.len() - pos);
        writer.write(gpu(), &bytes[pos..pos + n]).expect("write");
        pos += n;
        i += 1;
    }
    read(&writer.finish().expect("finish"))
}

#[test]
fn chunks_of_any_size_read_back_as_the_bytes_written() {
    let data = values(3000, 7);
    for sizes in [
        &[1][..],
        &[3],
        &[7],
        &[4097],
        &[4096 + 1, 1, 2, 5],
        &[12_000],
        &[2, 4, 6, 8, 10, 999],
    ] {
        let got = stream(&data, sizes);
        // Bit for bit: compare the bytes, not the values (NaN payloads, signed zeros).
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "chunk sizes {sizes:?}"
        );
    }
}

#[test]
fn a_partial_last_word_a_short_stream_and_an_overflow_are_refused() {
    let g = gpu();
    let mut writer = TensorWriter::new(GpuTensor::empty(g, &[2]).expect("empty"));
    writer.write(g, &[0; 7]).expect("7 of 8 bytes");
    assert!(matches!(
        writer.finish(),
        Err(GpuError::Shape { op: "write", .. })
    ));
    let mut writer = TensorWriter::new(GpuTensor::empty(g, &[2]).expect("empty"));
    writer.write(g, &[0; 5]).expect("5 bytes");
    assert!(matches!(
        writer.write(g, &[0; 4]),
        Err(GpuError::Shape { op: "write", .. })
    ));
    // An empty tensor is complete at once.
    let writer = TensorWriter::new(GpuTensor::empty(g, &[0, 3]).expect("empty"));
    assert_eq!(writer.finish().expect("empty tensor").dims(), [0, 3]);
    pollster::block_on(g.check()).expect("no device error");
}

#[test]
fn a_tensor_larger_than_a_binding_is_refused_before_allocating() {
    let g = gpu();
    let limit = g.max_binding_bytes();
    let too_many = (limit / 4 + 1) as usize;
    match GpuTensor::empty(g, &[too_many]) {
        Err(GpuError::TooLargeToBind { bytes, limit: l }) => {
            assert_eq!((bytes, l), (too_many as u64 * 4, limit));
        }
        other => panic!("{:?}", other.map(|t| t.dims().to_vec())),
    }
}
