/* lakeforge
checks:
  - {type: unique, column: product_line}
*/
select
    trim(productline)       as product_line,
    trim(textdescription)   as description
from bronze.shop_productlines
qualify row_number() over (partition by productline order by _lf_extracted_at desc) = 1
