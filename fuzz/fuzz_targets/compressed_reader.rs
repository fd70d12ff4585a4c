//! Feeds compressed input to the reader: the fuzzer's bytes compressed with zstd or gzip (so the
//! decompressed stream is arbitrary and reaches the JSON and framed readers), or put behind a
//! zstd or gzip magic number (so the decoders see arbitrary frames). Nothing may panic, and a
//! decompression bomb is stopped by the record limit.
#![no_main]

use std::io::Write;

use journey_spec::otel::read::{ReadOptions, read_into};
use journey_spec::otel::{CheckOptions, Summary, TraceStream, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let input = match mode % 4 {
        0 => zstd::encode_all(rest, 1).unwrap(),
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(rest).unwrap();
            e.finish().unwrap()
        }
        2 => [&[0x28, 0xb5, 0x2f, 0xfd][..], rest].concat(),
        _ => [&[0x1f, 0x8b][..], rest].concat(),
    };
    let options = ReadOptions { max_record_bytes: 1 << 16, ..ReadOptions::default() };
    let mut stream = TraceStream::new("fuzz", CheckOptions::default()).with_window(4);
    let mut errors = 0;
    read_into("fuzz", &input[..], &options, &mut stream, &mut |e| errors += e.count());
    let mut summary = Summary::new();
    summary.add(stream.finish(), errors);
    text::write_summary(&mut Vec::new(), &summary, &[]).unwrap();
});
