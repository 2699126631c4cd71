/* lakeforge
checks:
  - {type: unique, column: product_code}
  - {type: not_null, column: product_line}
*/
select
    p.product_code,
    p.product_name,
    p.product_line,
    l.description as product_line_description,
    p.product_scale,
    p.product_vendor,
    p.buy_price,
    p.msrp
from silver.products p
left join silver.product_lines l on l.product_line = p.product_line
