/* lakeforge
checks:
  - {type: unique, column: product_code}
  - {type: relationships, column: product_line, to: silver.product_lines}
*/
select
    upper(trim(productcode))    as product_code,
    trim(productname)           as product_name,
    trim(productline)           as product_line,
    trim(productscale)          as product_scale,
    trim(productvendor)         as product_vendor,
    quantityinstock::integer    as quantity_in_stock,
    buyprice::decimal(12, 2)    as buy_price,
    msrp::decimal(12, 2)        as msrp
from bronze.shop_products
qualify row_number() over (partition by productcode order by _lf_extracted_at desc) = 1
