//! A snappy-compressed parquet file in the hub's `glue/rte` schema (sentence1, sentence2, label, idx), as the
//! hub's parquet export stores it: shared by dept-data's parquet test and the workspace's `dept data fetch` test.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

pub fn write_rte(path: &Path, rows: usize) {
    let schema = "message schema { REQUIRED BYTE_ARRAY sentence1 (UTF8); REQUIRED BYTE_ARRAY sentence2 (UTF8); \
                  REQUIRED INT64 label; REQUIRED INT32 idx; }";
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut writer = SerializedFileWriter::new(File::create(path).unwrap(), schema, props).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let s1: Vec<ByteArray> = (0..rows)
        .map(|i| ByteArray::from(format!("premise {i}").as_str()))
        .collect();
    let s2: Vec<ByteArray> = (0..rows)
        .map(|i| ByteArray::from(format!("claim {i}").as_str()))
        .collect();
    let labels: Vec<i64> = (0..rows as i64).map(|i| i % 2).collect();
    let idx: Vec<i32> = (0..rows as i32).collect();
    for column in 0..4 {
        let mut col = group.next_column().unwrap().unwrap();
        match column {
            0 => col
                .typed::<ByteArrayType>()
                .write_batch(&s1, None, None)
                .unwrap(),
            1 => col
                .typed::<ByteArrayType>()
                .write_batch(&s2, None, None)
                .unwrap(),
            2 => col
                .typed::<Int64Type>()
                .write_batch(&labels, None, None)
                .unwrap(),
            _ => col
                .typed::<Int32Type>()
                .write_batch(&idx, None, None)
                .unwrap(),
        };
        col.close().unwrap();
    }
    group.close().unwrap();
    writer.close().unwrap();
}
