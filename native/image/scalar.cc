// The reference area resize: plain loops in the order of src/model/preprocess.ts resizeArea. The row
// pass keeps kImgRows source rows in flight (3 channels each: 12 independent fp64 chains, so the
// adder's latency is hidden) and reads each w·v product from a 256-entry table per distinct weight
// (the same fp64 product, looked up instead of converted and multiplied).
#include "area-plan.h"
#include "image.h"

namespace bitmar {

namespace {

// NR rows (1 or kImgRows) through the row pass; the extra row pointers of a short group are ignored.
template <int NR>
void img_rows_scalar(const uint8_t* const* rows, const img_axis& ax, const double* tables, int size, double* tmp) {
  const long long stride = static_cast<long long>(size) * 3;
  for (int o = 0; o < size; o++) {
    const int cnt = ax.count[o], off = ax.off[o];
    const long long k0 = static_cast<long long>(ax.start[o]) * 3;
    double acc[NR][3];
    for (int r = 0; r < NR; r++) acc[r][0] = acc[r][1] = acc[r][2] = 0.0;
    if (tables) {
      for (int t = 0; t < cnt; t++) {
        const double* tb = tables + static_cast<long long>(ax.tab[off + t]) * 256;
        const long long k = k0 + 3LL * t;
        for (int r = 0; r < NR; r++) {
          acc[r][0] += tb[rows[r][k]];
          acc[r][1] += tb[rows[r][k + 1]];
          acc[r][2] += tb[rows[r][k + 2]];
        }
      }
    } else {
      for (int t = 0; t < cnt; t++) {
        const double w = ax.w[off + t];
        const long long k = k0 + 3LL * t;
        for (int r = 0; r < NR; r++) {
          acc[r][0] += w * static_cast<double>(rows[r][k]);
          acc[r][1] += w * static_cast<double>(rows[r][k + 1]);
          acc[r][2] += w * static_cast<double>(rows[r][k + 2]);
        }
      }
    }
    for (int r = 0; r < NR; r++) {
      double* d = tmp + r * stride + 3LL * o;
      d[0] = acc[r][0];
      d[1] = acc[r][1];
      d[2] = acc[r][2];
    }
  }
}

void img_row_pass_scalar(const uint8_t* const* rows, int nrows, const img_axis& ax, const double* tables, int /*width*/, int size,
                         uint8_t* /*scratch*/, double* tmp) {
  if (nrows == kImgRows) {
    img_rows_scalar<kImgRows>(rows, ax, tables, size, tmp);
    return;
  }
  const long long stride = static_cast<long long>(size) * 3;
  for (int r = 0; r < nrows; r++) img_rows_scalar<1>(rows + r, ax, tables, size, tmp + r * stride);
}

bool img_resize_area_u8_scalar(const uint8_t* rgb, int width, int height, int size, uint8_t* out) {
  return img_resize_area(rgb, width, height, size, out, img_row_pass_scalar);
}

}  // namespace

extern const img_kernel_table img_table_scalar = {img_resize_area_u8_scalar};

}  // namespace bitmar
