/* lakeforge
checks:
  - {type: unique, column: [order_number, product_code]}
  - {type: relationships, column: order_number, to: silver.orders}
  - {type: relationships, column: product_code, to: silver.products}
  - {type: expression, name: quantity_positive, expression: quantity > 0, on_fail: quarantine}
*/
select
    ordernumber::integer            as order_number,
    orderlinenumber::integer        as order_line_number,
    upper(trim(productcode))        as product_code,
    quantityordered::integer        as quantity,
    priceeach::decimal(12, 2)       as unit_price
from bronze.shop_orderdetails
qualify row_number() over (partition by ordernumber, productcode order by _lf_extracted_at desc) = 1
