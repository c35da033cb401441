//! How a Rust value is stored in an Arrow column, and the [`table_row!`] macro that declares a
//! table's row type once: its fields are the columns (name, Arrow type and nullability follow
//! from the field's name and Rust type), in order. The same declaration writes batches
//! ([`Row::to_batch`]) and reads them back ([`Row::from_batch`]), so a column is named in one
//! place only.
//!
//! Reading is lenient where older files need it: an integer column of another integer type is
//! cast, a missing nullable column (a trailing column added by a later schema version) reads
//! as null, and a NaN in a nullable float column reads as null ("not recorded").

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Float64Builder, Int64Array, ListArray,
    ListBuilder, RecordBatch, StringArray, TimestampMillisecondArray, UInt16Array, UInt32Array,
    UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;
use serde::de::IntoDeserializer;

use crate::backend::ErrorKind;
use crate::manifest::Role;
use crate::record::{CellKind, Status};
use crate::workload::Stage;

/// Milliseconds since the Unix epoch, UTC: a `timestamp[ms, UTC]` column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcMs(pub i64);

impl UtcMs {
    /// From fractional milliseconds (rounded; `as` saturates and maps NaN to 0).
    pub fn from_f64(unix_ms: f64) -> Self {
        UtcMs(unix_ms.round() as i64)
    }
}

/// A column that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnError {
    /// Column name.
    pub column: &'static str,
    /// What is wrong (`is missing`, `has type Utf8`...).
    pub problem: String,
}

/// A value of one cell of a column. Implemented for the scalars below and their `Option`s.
pub trait Column: Sized + Clone {
    /// The Arrow type of the column.
    fn data_type() -> DataType;
    /// Whether the column may hold nulls (the `Option` types).
    const NULLABLE: bool;
    /// The column of `values`.
    fn array(values: Vec<Self>) -> ArrayRef;
    /// The values of `column` (`None`: the file lacks it), `rows` long.
    fn read(column: Option<&ArrayRef>, rows: usize) -> Result<Vec<Self>, String>;
}

/// A non-null scalar type that has a column type (its `Option` is the nullable column).
trait Scalar: Sized + Clone {
    fn data_type() -> DataType;
    fn build(values: Vec<Option<Self>>) -> ArrayRef;
    /// Value `i` of `a` (already cast to [`Scalar::data_type`]); `None` when null.
    fn get(a: &dyn Array, i: usize) -> Result<Option<Self>, String>;
    /// What a null in a non-nullable column reads as.
    fn fill() -> Self;
    /// False for a value that means "not recorded" (NaN).
    fn present(&self) -> bool {
        true
    }
}

fn cast_to(column: &ArrayRef, to: &DataType) -> Result<ArrayRef, String> {
    if column.data_type() == to {
        return Ok(column.clone());
    }
    let numeric = column.data_type().is_integer() && to.is_integer();
    if !numeric {
        return Err(format!("has type {}", column.data_type()));
    }
    arrow::compute::cast(column, to).map_err(|e| format!("has type {}: {e}", column.data_type()))
}

fn read_values<T: Scalar>(column: &ArrayRef) -> Result<Vec<Option<T>>, String> {
    let a = cast_to(column, &T::data_type())?;
    (0..a.len())
        .map(|i| Ok(T::get(&a, i)?.filter(T::present)))
        .collect()
}

macro_rules! column_impls {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn data_type() -> DataType {
                <$t as Scalar>::data_type()
            }
            const NULLABLE: bool = false;
            fn array(values: Vec<Self>) -> ArrayRef {
                <$t as Scalar>::build(values.into_iter().map(Some).collect())
            }
            fn read(column: Option<&ArrayRef>, _: usize) -> Result<Vec<Self>, String> {
                let column = column.ok_or_else(|| "is missing".to_owned())?;
                Ok(read_values::<$t>(column)?
                    .into_iter()
                    .map(|v| v.unwrap_or_else(<$t as Scalar>::fill))
                    .collect())
            }
        }

        impl Column for Option<$t> {
            fn data_type() -> DataType {
                <$t as Scalar>::data_type()
            }
            const NULLABLE: bool = true;
            fn array(values: Vec<Self>) -> ArrayRef {
                <$t as Scalar>::build(values)
            }
            fn read(column: Option<&ArrayRef>, rows: usize) -> Result<Vec<Self>, String> {
                match column {
                    Some(c) => read_values::<$t>(c),
                    None => Ok(vec![None; rows]),
                }
            }
        }
    )*};
}

/// A scalar stored in an Arrow array of its own (the value converts with `Into`); items after
/// `;` are added to the impl.
macro_rules! primitive {
    ($t:ty, $array:ty, $dt:expr, $fill:expr $(; $($extra:tt)*)?) => {
        impl Scalar for $t {
            fn data_type() -> DataType {
                $dt
            }
            fn build(values: Vec<Option<Self>>) -> ArrayRef {
                Arc::new(values.into_iter().collect::<$array>())
            }
            fn get(a: &dyn Array, i: usize) -> Result<Option<Self>, String> {
                let a = downcast::<$array>(a)?;
                Ok((!a.is_null(i)).then(|| a.value(i).into()))
            }
            fn fill() -> Self {
                $fill
            }
            $($($extra)*)?
        }
    };
}

fn downcast<T: 'static>(a: &dyn Array) -> Result<&T, String> {
    a.as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| format!("has type {}", a.data_type()))
}

primitive!(u16, UInt16Array, DataType::UInt16, 0);
primitive!(u32, UInt32Array, DataType::UInt32, 0);
primitive!(u64, UInt64Array, DataType::UInt64, 0);
primitive!(i64, Int64Array, DataType::Int64, 0);
primitive!(bool, BooleanArray, DataType::Boolean, false);

/// A count: a `UInt64` column.
impl Scalar for usize {
    fn data_type() -> DataType {
        DataType::UInt64
    }
    fn build(values: Vec<Option<Self>>) -> ArrayRef {
        Arc::new(
            values
                .into_iter()
                .map(|v| v.map(|v| v as u64))
                .collect::<UInt64Array>(),
        )
    }
    fn get(a: &dyn Array, i: usize) -> Result<Option<Self>, String> {
        let a = downcast::<UInt64Array>(a)?;
        Ok((!a.is_null(i)).then(|| a.value(i) as usize))
    }
    fn fill() -> Self {
        0
    }
}

primitive!(f64, Float64Array, DataType::Float64, f64::NAN;
    fn present(&self) -> bool {
        !self.is_nan()
    }
);

impl Scalar for UtcMs {
    fn data_type() -> DataType {
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    }
    fn build(values: Vec<Option<Self>>) -> ArrayRef {
        Arc::new(
            values
                .into_iter()
                .map(|v| v.map(|v| v.0))
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        )
    }
    fn get(a: &dyn Array, i: usize) -> Result<Option<Self>, String> {
        let a = downcast::<TimestampMillisecondArray>(a)?;
        Ok((!a.is_null(i)).then(|| UtcMs(a.value(i))))
    }
    fn fill() -> Self {
        UtcMs(0)
    }
}

primitive!(String, StringArray, DataType::Utf8, String::new());

/// An enum stored as its snake_case name (a `Utf8` column).
macro_rules! text {
    ($t:ty, $name:expr, $fill:expr) => {
        impl Scalar for $t {
            fn data_type() -> DataType {
                DataType::Utf8
            }
            fn build(values: Vec<Option<Self>>) -> ArrayRef {
                let name: fn(&$t) -> String = $name;
                Arc::new(
                    values
                        .iter()
                        .map(|v| v.as_ref().map(name))
                        .collect::<StringArray>(),
                )
            }
            fn get(a: &dyn Array, i: usize) -> Result<Option<Self>, String> {
                let a = downcast::<StringArray>(a)?;
                if a.is_null(i) {
                    return Ok(None);
                }
                let s = a.value(i);
                let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
                    s.into_deserializer();
                <$t>::deserialize(de)
                    .map(Some)
                    .map_err(|_| format!("holds `{s}`, not a known value"))
            }
            fn fill() -> Self {
                $fill
            }
        }
    };
}

text!(CellKind, |v| v.name().to_owned(), CellKind::Single);
text!(Status, |v| v.name().to_owned(), Status::Failed);
text!(Stage, |v| v.name().to_owned(), Stage::Single);
text!(ErrorKind, |v| v.name().to_owned(), ErrorKind::HttpStatus);
text!(Role, role_name, Role::Client);

/// The snake_case name of a role, as the manifest writes it.
pub(crate) fn role_name(role: &Role) -> String {
    role.to_string()
}

column_impls!(
    u16, u32, u64, usize, i64, bool, f64, UtcMs, String, CellKind, Status, Stage, ErrorKind, Role
);

/// A list of numbers: a `List<Float64>` column (nullable, so that a file written before the
/// column existed reads as empty lists; a null list reads as empty).
impl Column for Vec<f64> {
    fn data_type() -> DataType {
        DataType::List(Arc::new(Field::new("item", DataType::Float64, false)))
    }
    const NULLABLE: bool = true;
    fn array(values: Vec<Self>) -> ArrayRef {
        let mut b = ListBuilder::new(Float64Builder::new()).with_field(Arc::new(Field::new(
            "item",
            DataType::Float64,
            false,
        )));
        for v in values {
            b.values().append_slice(&v);
            b.append(true);
        }
        Arc::new(b.finish())
    }
    fn read(column: Option<&ArrayRef>, rows: usize) -> Result<Vec<Self>, String> {
        let Some(c) = column else {
            return Ok(vec![Vec::new(); rows]);
        };
        let list = downcast::<ListArray>(c.as_ref())?;
        (0..list.len())
            .map(|i| {
                if list.is_null(i) {
                    return Ok(Vec::new());
                }
                let item = list.value(i);
                let xs = downcast::<Float64Array>(item.as_ref())?;
                Ok(xs.iter().map(|x| x.unwrap_or(f64::NAN)).collect())
            })
            .collect()
    }
}

/// What a field of a row stands for: one column named after the field for a [`Column`]
/// value, or the columns of a group ([`column_group!`]), spliced into the row in the field's
/// place under their own names.
pub trait Columns: Sized + Clone {
    /// The columns of a field named `name`.
    fn column_fields(name: &'static str) -> Vec<Field>;
    /// The column arrays of the values `get` finds in `rows`, in field order.
    fn column_arrays<S>(rows: &[S], get: impl Fn(&S) -> &Self) -> Vec<ArrayRef>;
    /// The values of a field named `name`, read from `batch` by column name.
    fn read_columns(batch: &RecordBatch, name: &'static str) -> Result<Vec<Self>, ColumnError>;
}

impl<T: Column> Columns for T {
    fn column_fields(name: &'static str) -> Vec<Field> {
        vec![Field::new(name, T::data_type(), T::NULLABLE)]
    }
    fn column_arrays<S>(rows: &[S], get: impl Fn(&S) -> &Self) -> Vec<ArrayRef> {
        vec![T::array(rows.iter().map(|r| get(r).clone()).collect())]
    }
    fn read_columns(batch: &RecordBatch, name: &'static str) -> Result<Vec<Self>, ColumnError> {
        T::read(batch.column_by_name(name), batch.num_rows()).map_err(|problem| ColumnError {
            column: name,
            problem,
        })
    }
}

/// The columns of the field that the accessor reads (it only names the field's type).
pub(crate) fn fields_of<S, T: Columns>(_: impl Fn(&S) -> &T, name: &'static str) -> Vec<Field> {
    T::column_fields(name)
}

/// The values of the field that the accessor reads, read from `batch` as column(s) `name`.
pub(crate) fn read_of<S, T: Columns>(
    _: impl Fn(&S) -> &T,
    batch: &RecordBatch,
    name: &'static str,
) -> Result<std::vec::IntoIter<T>, ColumnError> {
    Ok(T::read_columns(batch, name)?.into_iter())
}

/// The `batch.num_rows()` values that `next` builds from the columns read, or an error when
/// a column ran out early.
pub(crate) fn collect_rows<S>(
    batch: &RecordBatch,
    next: impl FnMut() -> Option<S>,
) -> Result<Vec<S>, ColumnError> {
    std::iter::repeat_with(next)
        .take(batch.num_rows())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ColumnError {
            column: "",
            problem: "columns of different lengths".into(),
        })
}

/// The column name of a field: its own name, or the one after `as`.
macro_rules! column_name {
    ($f:ident) => {
        stringify!($f)
    };
    ($f:ident $column:ident) => {
        stringify!($column)
    };
}

pub(crate) use column_name;

/// Makes a struct a group of columns ([`Columns`]) that a row can hold as one field:
/// `column_group!(Type { field, field as column_name, ... })` lists every field in column
/// order; the column types follow from the fields' types.
macro_rules! column_group {
    ($s:ident { $($f:ident $(as $column:ident)?),* $(,)? }) => {
        impl $crate::table::columns::Columns for $s {
            fn column_fields(_: &'static str) -> Vec<arrow::datatypes::Field> {
                use $crate::table::columns::fields_of;
                let mut v = Vec::new();
                $(v.extend(fields_of(|r: &$s| &r.$f, $crate::table::columns::column_name!($f $($column)?)));)*
                v
            }

            fn column_arrays<S>(
                rows: &[S],
                get: impl Fn(&S) -> &Self,
            ) -> Vec<arrow::array::ArrayRef> {
                use $crate::table::columns::Columns;
                let mut v = Vec::new();
                $(v.extend(Columns::column_arrays(rows, |r| &get(r).$f));)*
                v
            }

            fn read_columns(
                batch: &arrow::array::RecordBatch,
                _: &'static str,
            ) -> Result<Vec<Self>, $crate::table::columns::ColumnError> {
                use $crate::table::columns::{collect_rows, read_of};
                $(let mut $f = read_of(|r: &$s| &r.$f, batch, $crate::table::columns::column_name!($f $($column)?))?;)*
                collect_rows(batch, || Some($s { $($f: $f.next()?),* }))
            }
        }
    };
}

pub(crate) use column_group;

/// A table's row type, declared with [`table_row!`]: a group of columns with a table name.
pub trait Row: Columns {
    /// The table name (`cells`, `agents`...).
    const TABLE: &'static str;

    /// The columns, in field order.
    fn fields() -> Vec<Field> {
        Self::column_fields("")
    }

    /// The column arrays of `rows`, in field order.
    fn arrays(rows: &[Self]) -> Vec<ArrayRef> {
        Self::column_arrays(rows, |r| r)
    }

    /// The rows of a batch, read by column name.
    fn from_batch(batch: &RecordBatch) -> Result<Vec<Self>, ColumnError> {
        Self::read_columns(batch, "")
    }

    /// The table's schema.
    fn schema() -> SchemaRef {
        Arc::new(Schema::new(Self::fields()))
    }

    /// The batch of `rows`, with [`Row::schema`].
    fn to_batch(rows: &[Self]) -> Result<RecordBatch, arrow::error::ArrowError> {
        RecordBatch::try_new(Self::schema(), Self::arrays(rows))
    }
}

/// Declares a table's row type: `table_row! { #[doc] pub struct Name: "table" { #[doc] pub
/// column: Type, ... } }`. Field names are column names; a field whose type is a group of
/// columns ([`column_group!`]) stands for the group's columns instead.
macro_rules! table_row {
    (
        $(#[$m:meta])*
        pub struct $name:ident : $table:literal {
            $($(#[$fm:meta])* pub $f:ident : $t:ty,)*
        }
    ) => {
        $(#[$m])*
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
        }

        $crate::table::columns::column_group!($name { $($f),* });

        impl $crate::table::columns::Row for $name {
            const TABLE: &'static str = $table;
        }
    };
}

pub(crate) use table_row;

#[cfg(test)]
mod tests {
    use super::*;

    table_row! {
        /// A row for the tests.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Sample: "sample" {
            /// Text.
            pub name: String,
            /// Kind.
            pub kind: CellKind,
            /// A count stored as u32.
            pub count: u32,
            /// A float, NaN = not recorded.
            pub value: Option<f64>,
            /// A trailing column added by a later schema version.
            pub added: Option<String>,
        }
    }

    #[test]
    fn rows_round_trip_and_older_files_read() {
        let rows = vec![
            Sample {
                name: "a".into(),
                kind: CellKind::Concurrent,
                count: 3,
                value: Some(1.5),
                added: Some("x".into()),
            },
            Sample {
                name: "b".into(),
                kind: CellKind::Warmup,
                count: 0,
                value: None,
                added: None,
            },
        ];
        let b = Sample::to_batch(&rows).expect("batch");
        assert_eq!(Sample::from_batch(&b).expect("read"), rows);
        let names: Vec<_> = Sample::fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["name", "kind", "count", "value", "added"]);
        assert!(!Sample::fields()[2].is_nullable() && Sample::fields()[3].is_nullable());

        // An older file: `count` as u64, a NaN value, no trailing `added` column.
        let old = RecordBatch::try_from_iter([
            ("name", Arc::new(StringArray::from(vec!["c"])) as ArrayRef),
            (
                "kind",
                Arc::new(StringArray::from(vec!["isolated"])) as ArrayRef,
            ),
            ("count", Arc::new(UInt64Array::from(vec![7u64])) as ArrayRef),
            (
                "value",
                Arc::new(Float64Array::from(vec![f64::NAN])) as ArrayRef,
            ),
        ])
        .expect("old batch");
        let read = Sample::from_batch(&old).expect("old rows");
        assert_eq!(
            read,
            [Sample {
                name: "c".into(),
                kind: CellKind::Isolated,
                count: 7,
                value: None,
                added: None,
            }]
        );

        // A missing non-nullable column and an unknown kind are errors naming the column.
        let bad = RecordBatch::try_from_iter([(
            "kind",
            Arc::new(StringArray::from(vec!["analysis"])) as ArrayRef,
        )])
        .expect("bad batch");
        let e = Sample::from_batch(&bad).expect_err("refused");
        assert_eq!(e.column, "name");
        let bad = RecordBatch::try_from_iter([
            ("name", Arc::new(StringArray::from(vec!["d"])) as ArrayRef),
            (
                "kind",
                Arc::new(StringArray::from(vec!["analysis"])) as ArrayRef,
            ),
        ])
        .expect("bad batch");
        assert_eq!(
            Sample::from_batch(&bad).expect_err("refused").column,
            "kind"
        );
    }
}
